"""The generated protocol files are up to date with protocol/messages.toml and compile."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib

import pytest

from dopa_rl.protocol import messages as P
import protocol_codegen as cg


def test_generated_files_are_current() -> None:
    proc = subprocess.run([sys.executable, str(cg.ROOT / "tools" / "protocol_codegen.py"), "--check"],
                          capture_output=True, text=True, cwd=cg.ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_hash_matches_documented_recipe() -> None:
    data = tomllib.loads(cg.TOML_PATH.read_text(encoding="utf-8"))

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k != "doc"}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o

    canon = json.dumps(strip(data), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    digest = hashlib.sha256(canon).digest()
    assert P.SCHEMA_HASH.to_bytes(4, "little") == digest[:4]


def test_every_message_fits_a_frame_and_events_carry_time() -> None:
    for spec in P.MESSAGES:
        assert P.HEADER_SIZE + spec.size + P.CRC_SIZE <= P.MAX_FRAME
        if spec.direction == "event":
            assert spec.fields[0] == ("t_us", "u32", 1)
    assert P.SPEC_BY_NAME["ANALOG_BATCH"].size == 4 + 2 + 1 + 2 * P.ANALOG_BATCH


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no host C compiler")
def test_headers_compile_as_c_and_cpp(tmp_path) -> None:
    src = tmp_path / "t.c"
    src.write_text(f'#include "{cg.H_OUT}"\n#include "{cg.VEC_OUT}"\n'
                   "int main(void){uint8_t b[64] = {0}; dopa_hello_reply_t m; dopa_unpack_hello_reply(b, &m);\n"
                   "return (int)dopa_body_size(DOPA_MSG_ANALOG_BATCH) - 23 + (int)m.boot + (int)(dopa_vectors[0].n_fields * 0);}\n")
    for cmd in (["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-x", "c"],
                ["g++", "-Wall", "-Wextra", "-Werror", "-x", "c++"]):
        if shutil.which(cmd[0]) is None:
            continue
        exe = tmp_path / "t"
        subprocess.run(cmd + [str(src), "-o", str(exe)], check=True, capture_output=True)
        assert subprocess.run([str(exe)]).returncode == 0
