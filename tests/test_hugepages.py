"""textrec.runtime.hugepages: the glibc tunable is added once, other tunables kept, and the CLI's
re-exec gives the process the tunable exactly where it helps (THP mode `madvise`)."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from textrec.runtime import hugepages

REPO = pathlib.Path(__file__).resolve().parents[1]
PROBE = ("from textrec.runtime import hugepages; hugepages.reexec_with_hugepages(); import os; "
         "print(os.environ.get('GLIBC_TUNABLES', ''), os.getpid())")


def test_tunable_added_once_and_others_kept():
  env = hugepages.with_hugepages({"PATH": "/bin"})
  assert env == {"PATH": "/bin", "GLIBC_TUNABLES": hugepages.TUNABLE}
  env = hugepages.with_hugepages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
  assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{hugepages.TUNABLE}"
  assert hugepages.with_hugepages(env) == env
  off = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}  # a user's own choice wins
  assert hugepages.with_hugepages(off) == off


def test_thp_mode_is_read_from_the_kernel_file(tmp_path):
  f = tmp_path / "enabled"
  f.write_text("always [madvise] never\n")
  assert hugepages.thp_mode(str(f)) == "madvise"
  f.write_text("[always] madvise never\n")
  assert hugepages.thp_mode(str(f)) == "always" and not hugepages.useful(str(f))
  assert hugepages.thp_mode(str(tmp_path / "missing")) == ""


def _probe(**extra: str) -> tuple[str, int]:
  env = {k: v for k, v in os.environ.items()
         if k not in ("GLIBC_TUNABLES", "TEXTREC_HUGEPAGES", "TEXTREC_REEXECED")}
  env.update(extra)
  p = subprocess.Popen([sys.executable, "-c", PROBE], cwd=REPO, env=env,
                       stdout=subprocess.PIPE, text=True)
  out, _ = p.communicate(timeout=120)
  assert p.returncode == 0
  tunables, pid = out.split()[:-1], int(out.split()[-1])
  assert pid == p.pid  # exec replaces the process: same pid (a SIGKILL still reaches it)
  return " ".join(tunables), pid


def test_reexec_adds_the_tunable_where_it_helps_and_opt_out():
  tunables, _ = _probe()
  if hugepages.useful():
    assert hugepages.TUNABLE in tunables
  else:  # THP mode not `madvise` or no glibc >= 2.35: nothing to gain, no re-exec
    assert tunables == ""
  assert _probe(TEXTREC_HUGEPAGES="0")[0] == ""
