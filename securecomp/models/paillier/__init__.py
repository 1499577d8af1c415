"""``backend="paillier"``: federated gradient aggregation and encrypted-feature inference.

Training is *federated gradient aggregation* under packed Paillier (Phong et al., IEEE
TIFS 2018; Zhang et al., BatchCrypt, USENIX ATC 2020), not model code written against
`SecureTensor`: data holders compute gradients in plaintext on their own rows, encrypt
them packed, an aggregator adds the ciphertexts and a key holder decrypts only the sum.
Inference multiplies the client's encrypted features by the server's plaintext model.

* :mod:`~securecomp.models.paillier.protocol` -- `PaillierProtocol` (the estimator backend);
* :mod:`~securecomp.models.paillier.training` -- the protocol, its threat model and the
  roles `KeyHolder` and `Aggregator`; :mod:`~securecomp.models.paillier.holder` -- `Holder`;
* :mod:`~securecomp.models.paillier.session` -- message fields, schedule, aggregate decoding;
* :mod:`~securecomp.models.paillier.inference` -- `InferenceClient`, `InferenceServer`;
* :mod:`~securecomp.models.paillier.driver` -- running the roles in one process or over
  `securecomp.net` channels;
* :mod:`~securecomp.models.paillier.aggregation` -- packed encrypt / add / decrypt;
* :mod:`~securecomp.models.paillier.messages` -- message kinds and sealed links;
* :mod:`~securecomp.models.paillier.gradient` -- plaintext gradients, quantization, and the
  key holder's iterates (updated by `securecomp.models.gd.update`);
* :mod:`~securecomp.models.paillier.plan` -- ciphertext counts, bytes, estimated time;
* :mod:`~securecomp.models.paillier.config` -- `PaillierOptions`.
"""

from __future__ import annotations

from securecomp.models.paillier.aggregation import decrypt_sum, encrypt_update, sum_updates
from securecomp.models.paillier.config import PaillierOptions
from securecomp.models.paillier.driver import (
    run_aggregator,
    run_holder,
    run_key_holder,
    simulate_training,
)
from securecomp.models.paillier.holder import Holder
from securecomp.models.paillier.inference import InferenceClient, InferenceServer
from securecomp.models.paillier.messages import Link
from securecomp.models.paillier.plan import plan_training
from securecomp.models.paillier.protocol import PaillierFitState, PaillierProtocol
from securecomp.models.paillier.role import (
    AGGREGATOR,
    KEY_HOLDER,
    connect_roles,
    holder_name,
)
from securecomp.models.paillier.training import Aggregator, KeyHolder

__all__ = [
    "AGGREGATOR",
    "KEY_HOLDER",
    "Aggregator",
    "Holder",
    "InferenceClient",
    "InferenceServer",
    "KeyHolder",
    "Link",
    "PaillierFitState",
    "PaillierOptions",
    "PaillierProtocol",
    "connect_roles",
    "decrypt_sum",
    "encrypt_update",
    "holder_name",
    "plan_training",
    "run_aggregator",
    "run_holder",
    "run_key_holder",
    "simulate_training",
    "sum_updates",
]
