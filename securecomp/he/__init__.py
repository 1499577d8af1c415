"""Homomorphic encryption backends of `SecureTensor`: CKKS (TenSEAL) and Paillier (phe)."""
