"""``securecomp party`` / ``securecomp dealer`` over mutual TLS with pinned certificates.

Real processes on loopback, each role with a freshly generated self-signed certificate
(`securecomp.net.generate_party_credentials`), pinned by the roles it talks to through
``--cert``, ``--key`` and ``--peer-cert ID=PATH``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from securecomp.errors import ParameterError
from securecomp.mpc.cli import (
    THREAT_MODEL,
    dealer_tls_configs,
    main,
    party_tls_configs,
)
from securecomp.mpc.dealer import LINK_DEALER_ID, LINK_PARTY_ID
from securecomp.mpc.launch import ProcessRun, run_processes
from securecomp.net import certificate_fingerprint, generate_party_credentials

pytestmark = pytest.mark.tcp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ENV = {"PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")])}

#: Credential id of the dealer's certificate (only its subject name depends on it).
DEALER_CRED_ID = 99


def _write(directory: Path, name: str, cert: bytes, key: bytes) -> tuple[str, str]:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)


def _credentials(directory: Path, parties: int) -> dict[str, tuple[str, str]]:
    """Fresh certificate and key files for each party ("0", "1", ...) and the dealer."""
    out = {}
    for i in range(parties):
        c = generate_party_credentials(i)
        out[str(i)] = _write(directory, f"party{i}", c.cert_pem, c.key_pem)
    d = generate_party_credentials(DEALER_CRED_ID)
    out["dealer"] = _write(directory, "dealer", d.cert_pem, d.key_pem)
    return out


def _flags(creds: dict[str, tuple[str, str]], me: str, pins: dict[str, str]) -> list[str]:
    cert, key = creds[me]
    args = ["--cert", cert, "--key", key]
    for peer, path in pins.items():
        args += ["--peer-cert", f"{peer}={path}"]
    return args


def _tls_args(creds: dict[str, tuple[str, str]], parties: int) -> tuple[list[list[str]], list[str]]:
    party_args = [
        _flags(
            creds,
            str(i),
            {
                **{str(j): creds[str(j)][0] for j in range(parties) if j != i},
                "dealer": creds["dealer"][0],
            },
        )
        for i in range(parties)
    ]
    dealer_args = _flags(creds, "dealer", {str(i): creds[str(i)][0] for i in range(parties)})
    return party_args, dealer_args


def _launch(
    parties: int, party_args: list[list[str]], dealer_args: list[str], **kw: object
) -> ProcessRun:
    run = run_processes(
        "mpc_programs:arith",
        parties,
        env=ENV,
        party_args=party_args,
        dealer_args=dealer_args,
        **kw,  # type: ignore[arg-type]
    )
    assert all(code is not None for code in run.returncodes)  # every process has exited
    return run


def test_three_parties_and_dealer_over_mutual_tls_match_numpy(tmp_path: Path) -> None:
    parties = 3
    creds = _credentials(tmp_path, parties)
    party_args, dealer_args = _tls_args(creds, parties)
    rng = np.random.default_rng(7)
    x, y = rng.uniform(-4, 4, (3, 4)), rng.uniform(-4, 4, (3, 4))
    run = _launch(parties, party_args, dealer_args, inputs=[x, y, None])
    assert run.returncodes == [0] * (parties + 1), (run.parties, run.dealer, run.stderr)
    for out in run.parties:
        res = out["result"]
        np.testing.assert_allclose(res["mul"], x * y, atol=1e-3)
        np.testing.assert_allclose(res["matmul"], x @ y.T, atol=1e-3)
        np.testing.assert_array_equal(res["lt"], (x < y).astype(float))
        assert out["report"]["comm"]["per_phase"]["online"]["bytes_sent"] > 0
    assert run.dealer["stats"]["bytes_sent"] > 0


@pytest.mark.parametrize("impostor", ["party", "dealer"])
def test_a_certificate_other_than_the_pinned_one_is_refused(tmp_path: Path, impostor: str) -> None:
    """Party 1 pins a stranger's certificate for party 0 (or for the dealer): no session."""
    parties = 2
    creds = _credentials(tmp_path, parties)
    stranger = generate_party_credentials(0)
    wrong, _ = _write(tmp_path, "stranger", stranger.cert_pem, stranger.key_pem)
    party_args, dealer_args = _tls_args(creds, parties)
    target = "0" if impostor == "party" else "dealer"
    party_args[1] = [
        f"{target}={wrong}" if a == f"{target}={creds[target][0]}" else a for a in party_args[1]
    ]
    assert f"{target}={wrong}" in party_args[1]
    run = _launch(
        parties,
        party_args,
        dealer_args,
        inputs=[np.zeros((3, 4)), np.zeros((3, 4))],
        timeout=3.0,
        connect_timeout=3.0,
        dealer_idle_timeout=5.0,
        wait=60,
        grace=10,
    )
    assert run.parties[1]["error_type"] == "PeerAuthenticationError", run.parties[1]
    assert run.returncodes[2] == 1
    if impostor == "party":  # party 0 sees the handshake broken off by the peer
        assert run.parties[0]["error_type"] == "PeerAuthenticationError", run.parties[0]
    else:  # the dealer refuses party 1's link; party 0 waits for party 1 in vain
        assert run.dealer["error_type"] == "PeerAuthenticationError", run.dealer
        assert run.parties[0]["error_party"] == 1, run.parties[0]
    assert all("result" not in out for out in run.parties)  # nobody got an output
    assert not run.killed  # every role noticed and exited by itself


# --- flag parsing, in process ---------------------------------------------------------------


def _cli_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, str]]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


PARTY = [
    "party", "--id", "0", "--peers", "127.0.0.1:1,127.0.0.1:2", "--dealer", "127.0.0.1:3",
    "--session", "00" * 16, "--program", "mpc_programs:arith",
]  # fmt: skip


def test_configs_pin_each_peer_under_its_link_id(tmp_path: Path) -> None:
    creds = _credentials(tmp_path, 3)
    party_args, dealer_args = _tls_args(creds, 3)

    def fp(path: str) -> str:
        return certificate_fingerprint(Path(path).read_bytes())

    mesh, link = party_tls_configs(1, 3, creds["1"][0], creds["1"][1], party_args[1][5::2])
    assert mesh is not None and link is not None
    assert {j: certificate_fingerprint(p) for j, p in mesh.pinned.items()} == {
        0: fp(creds["0"][0]),
        2: fp(creds["2"][0]),
    }
    # On the dealer link the dealer is endpoint 0 and the party endpoint 1.
    assert list(link.pinned) == [LINK_DEALER_ID]
    assert certificate_fingerprint(link.pinned[LINK_DEALER_ID]) == fp(creds["dealer"][0])
    dealer = dealer_tls_configs(3, creds["dealer"][0], creds["dealer"][1], dealer_args[5::2])
    assert dealer is not None and len(dealer) == 3
    for i, cfg in enumerate(dealer):
        assert list(cfg.pinned) == [LINK_PARTY_ID]
        assert certificate_fingerprint(cfg.pinned[LINK_PARTY_ID]) == fp(creds[str(i)][0])
    assert party_tls_configs(0, 3, None, None, None) == (None, None)
    assert dealer_tls_configs(3, None, None, []) is None
    # One shared list of every role's certificate may include our own, but only our own.
    everyone = [f"{i}={creds[str(i)][0]}" for i in range(3)] + [f"dealer={creds['dealer'][0]}"]
    mesh, _ = party_tls_configs(1, 3, creds["1"][0], creds["1"][1], everyone)
    assert mesh is not None and sorted(mesh.pinned) == [0, 2]
    assert dealer_tls_configs(3, creds["dealer"][0], creds["dealer"][1], everyone) is not None
    swapped = [f"1={creds['0'][0]}" if e.startswith("1=") else e for e in everyone]
    with pytest.raises(ParameterError, match="differs from --cert"):
        party_tls_configs(1, 3, creds["1"][0], creds["1"][1], swapped)


def test_bad_tls_flags_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    creds = _credentials(tmp_path, 2)
    cert, key = creds["0"]
    pins = ["--peer-cert", f"1={creds['1'][0]}", "--peer-cert", f"dealer={creds['dealer'][0]}"]
    unknown = f"5={creds['1'][0]}"  # a party the 2-party session does not have
    cases = {
        "--cert and --key": ["--cert", cert, *pins],
        "no --peer-cert for dealer": ["--cert", cert, "--key", key, pins[0], pins[1]],
        "ID=PATH": ["--cert", cert, "--key", key, *pins, "--peer-cert", "one=x.crt"],
        "given twice": ["--cert", cert, "--key", key, *pins, "--peer-cert", pins[1]],
        "not part of this session": ["--cert", cert, "--key", key, *pins, "--peer-cert", unknown],
        "cannot read": ["--cert", str(tmp_path / "missing.crt"), "--key", key, *pins],
        "not a PEM X.509 certificate": ["--cert", key, "--key", key, *pins],
    }  # fmt: skip
    for message, flags in cases.items():
        code, out = _cli_json(capsys, PARTY + flags)
        assert code == 2, (message, out)
        assert out["error_type"] == "ParameterError" and message in out["error"], (message, out)
    Path(key).chmod(0o644)
    code, out = _cli_json(capsys, [*PARTY, "--cert", cert, "--key", key, *pins])
    assert code == 2 and "chmod 600" in out["error"]


def test_remote_addresses_without_tls_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.replace("127.0.0.1", "192.0.2.1") for a in PARTY]  # TEST-NET-1, never reached
    code, out = _cli_json(capsys, argv)
    assert code == 2
    assert out["error_type"] == "InsecureParameterError" and "tls" in out["error"].lower()
    code, out = _cli_json(
        capsys, ["dealer", "--listen", "192.0.2.1:1,192.0.2.1:2", "--session", "00" * 16]
    )
    assert code == 2 and out["error_type"] == "InsecureParameterError"


@pytest.mark.parametrize("role", ["party", "dealer"])
def test_help_states_the_threat_model(role: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([role, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert THREAT_MODEL in text
    assert "semi-honest" in text and "--peer-cert" in text
