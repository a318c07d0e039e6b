"""A real one-node SLURM cluster on this machine, for the workflow's SLURM test.

Debian's ``slurmctld``, ``slurmd``, ``slurm-client`` and ``munge`` (installed with
apt-get when missing and this is root), a ``slurm.conf`` written for this machine
(its hostname, CPUs and memory from ``slurmd -C``; ``proctrack/linuxproc``,
``task/none``, no accounting storage, a ``MinJobAge`` long enough for ``squeue`` to
report finished jobs) and two fake GPUs (``/dev/fakegpuN``, character devices like
``/dev/null``) named in ``gres.conf``, so SLURM hands each GPU job its own
``CUDA_VISIBLE_DEVICES``. Daemons run in the foreground as our children and are
stopped by their process ids; everything else lives in one temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
COMMANDS = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "munged")
FAKE_GPUS = 2
SYSTEM_CONF = Path("/etc/slurm")
MARK = "# written by xaiseg tests/slurm/cluster.py; removed when its cluster stops"


def installed() -> bool:
    return all(shutil.which(c) or Path(f"/usr/sbin/{c}").exists() for c in COMMANDS)


def install() -> str:
    """Install the Debian packages when missing; '' on success, else why not."""
    if installed():
        return ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "SLURM is not installed and this is not root with apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode:
            return f"{' '.join(command)} failed: {result.stderr[-500:]}"
    return "" if installed() else "apt-get installed SLURM, but its commands are missing"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    """``with LocalSlurm(folder) as cluster:`` starts munged, slurmctld and slurmd and
    waits for the node to be idle; ``cluster.env`` points clients at it."""

    def __init__(self, folder: Path, partition: str = "xaiseg") -> None:
        self.folder = Path(folder)
        self.partition = partition
        self.processes: list[subprocess.Popen] = []
        self.gpus = 0
        self.written: list[Path] = []
        self.env = {**os.environ, "SLURM_CONF": str(self.folder / "slurm.conf")}

    def __enter__(self) -> LocalSlurm:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self) -> None:
        for name in ("state", "spool", "logs"):
            (self.folder / name).mkdir(parents=True, exist_ok=True)
        self._start_munge()
        self.gpus = self._fake_gpus()
        self._write_config()
        self._daemon(["slurmctld", "-D", "-i"], "slurmctld.out")
        time.sleep(1)
        self._daemon(["slurmd", "-D"], "slurmd.out")
        self._wait_idle()

    def _daemon(self, command: list[str], log: str) -> subprocess.Popen:
        out = (self.folder / "logs" / log).open("w")
        process = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def _start_munge(self) -> None:
        """munged as the munge user, unless one already answers."""
        if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
            return
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["mungekey", "--create"], check=True)
            shutil.chown("/etc/munge/munge.key", "munge", "munge")
        self._daemon(["runuser", "-u", "munge", "--", "munged", "--foreground"], "munged.out")
        for _ in range(50):
            if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"munged did not start: {(self.folder / 'logs/munged.out').read_text()}")

    def _fake_gpus(self) -> int:
        """Character devices SLURM can hand out as GPUs; none where mknod is refused."""
        for index in range(FAKE_GPUS):
            device = Path(f"/dev/fakegpu{index}")
            if not device.exists():
                made = subprocess.run(["mknod", str(device), "c", "1", "3"], capture_output=True)
                if made.returncode:
                    return 0
        return FAKE_GPUS

    def _write_config(self) -> None:
        node = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True)
        node_line = node.stdout.splitlines()[0]  # NodeName=<host> CPUs=... RealMemory=...
        host = node_line.split()[0].split("=", 1)[1]
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        folder = self.folder
        lines = [
            "ClusterName=xaiseg",
            f"SlurmctldHost={host}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            f"StateSaveLocation={folder / 'state'}",
            f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
            f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'logs/slurmctld.log'}",
            f"SlurmdLogFile={folder / 'logs/slurmd.log'}",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "MinJobAge=3600",  # squeue reports a finished job for an hour: no sacct here
            "ReturnToService=2",
            *(["GresTypes=gpu"] if self.gpus else []),
            f"{node_line}{gres} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        configs = {"slurm.conf": "\n".join([MARK, *lines]) + "\n"}
        if self.gpus:
            files = f"/dev/fakegpu[0-{self.gpus - 1}]"
            configs["gres.conf"] = f"{MARK}\nNodeName={host} Name=gpu File={files}\n"
        for name, text in configs.items():
            (folder / name).write_text(text)
            # Also where SLURM looks by default: the executor plugin's job step drops
            # SLURM_CONF from the environment of the srun it starts inside each job.
            system = SYSTEM_CONF / name
            if system.exists() and MARK not in system.read_text():
                raise RuntimeError(f"{system} exists and is not ours: this is a real SLURM node")
            system.parent.mkdir(parents=True, exist_ok=True)
            system.write_text(text)
            self.written.append(system)

    def _wait_idle(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = subprocess.run(
                ["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True, text=True
            ).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        logs = "\n".join(p.read_text()[-1500:] for p in (self.folder / "logs").glob("*.log"))
        raise RuntimeError(f"the SLURM node never became idle (state {state!r}):\n{logs}")

    def jobs(self) -> list[dict[str, str]]:
        """squeue's view: id, state and comment (the plugin's rule name) of each job."""
        out = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%i|%T|%k"], env=self.env,
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        rows = [line.split("|", 2) for line in out.splitlines() if line.strip()]
        return [{"id": i, "state": s, "comment": c} for i, s, c in rows]

    def cancel(self, job_id: str) -> None:
        subprocess.run(["scancel", job_id], env=self.env, check=True)

    def stop(self) -> None:
        """Stop the daemons we started, by their process ids, newest first."""
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written.clear()
