"""A single-node SLURM cluster on this machine for the cluster tests: munged, slurmctld, slurmd.

Debian's ``slurm-wlm`` and ``munge`` packages (``make test`` installs them as root); everything
else (key, config, sockets, state, logs) lives in a temporary folder, on ports of its own.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing() -> str | None:
    """Why a cluster cannot start here, or None."""
    absent = [d for d in (*DAEMONS, "sbatch", "sinfo", "squeue") if not shutil.which(d)]
    if absent:
        return f"SLURM is not installed ({', '.join(absent)} missing): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "the test cluster runs its daemons as root"
    return None


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class SlurmCluster:
    """Start with ``start()``; ``env`` has SLURM_CONF for the client commands; ``stop()`` ends it."""

    def __init__(self, root: Path, cpus: int = 2):
        self.root, self.cpus = root, cpus
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        r = self.root
        for name in ("state", "spool", "log"):
            (r / name).mkdir(parents=True, exist_ok=True)
        key = r / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        host = socket.gethostname().split(".")[0]
        ctld_port, d_port = free_ports(2)
        self.conf.write_text("\n".join([
            "ClusterName=papersuite", f"SlurmctldHost={host}(127.0.0.1)", f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={d_port}", "AuthType=auth/munge", f"AuthInfo=socket={r / 'munge.sock'}",
            "CredType=cred/munge", "SlurmUser=root", "SlurmdUser=root", f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}", f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}", f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "MpiDefault=none", "ReturnToService=2", "SchedulerType=sched/backfill", "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            # no accounting database: `sacct` is off, so job states come from squeue and result files
            "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
            "JobAcctGatherType=jobacct_gather/none",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))

    def start(self, timeout: float = 60) -> "SlurmCluster":
        self._write_config()
        r = self.root
        subprocess.run(["munged", "--force", f"--key-file={r / 'munge.key'}", f"--socket={r / 'munge.sock'}",
                        f"--log-file={r / 'log' / 'munged.log'}", f"--pid-file={r / 'munged.pid'}",
                        f"--seed-file={r / 'munged.seed'}"], check=True, env=self.env)
        subprocess.run(["slurmctld", "-i"], check=True, env=self.env)
        subprocess.run(["slurmd"], check=True, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True).stdout
            if state.strip() == "idle":
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the test SLURM node did not become idle: {self.log()}")

    def squeue(self) -> str:
        return subprocess.run(["squeue"], env=self.env, capture_output=True, text=True).stdout

    def log(self) -> str:
        return "\n".join(p.read_text()[-1500:] for p in (self.root / "log").glob("*.log"))

    def stop(self) -> None:
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.root / f"{name}.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().split()[0]), 15)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(1)
