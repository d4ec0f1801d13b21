"""``synthetic/*``: accgen running the access patterns shipped in configs/workloads/synthetic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from damon_eval.paths import DATA_DIR, configs_dir
from damon_eval.workloads.base import (
    GUEST_BIN_DIR,
    GUEST_SRC_DIR,
    GUEST_WORKLOAD_DIR,
    PreparePlan,
    RunParams,
    RunPlan,
    Upload,
    Workload,
    WorkloadContext,
    files_digest,
)
from damon_eval.workloads.truth import TRUTH_FILE_NAME

ACCGEN_SOURCE_PATH = DATA_DIR / "accgen" / "accgen.c"
ACCGEN_CFLAGS: tuple[str, ...] = ("-std=c11", "-O2", "-Wall", "-Wextra")
GUEST_ACCGEN_PATH = f"{GUEST_BIN_DIR}/accgen"

# name: (description, seconds at scale 1)
SYNTHETIC_CONFIGS: dict[str, tuple[str, float]] = {
    "zigzag": ("two 100 MiB regions accessed in turn every 5 s (masim's zigzag)", 70),
    "stairs": ("ten 10 MiB regions, each hot for 5 s in turn (masim's stairs)", 60),
    "hotcold": ("32 MiB hot all the time, 256 MiB written once then idle", 100),
}


def synthetic_config_path(name: str) -> Path:
    return configs_dir() / "workloads" / "synthetic" / f"{name}.cfg"


def accgen_compile_command(output: str | Path, source: str | Path) -> list[str]:
    return ["gcc", *ACCGEN_CFLAGS, "-o", str(output), str(source)]


@dataclass(frozen=True, slots=True)
class SyntheticWorkload(Workload):
    name: str
    description: str
    seconds_at_scale_1: float
    suite: str = "synthetic"

    @property
    def config_path(self) -> Path:
        return synthetic_config_path(self.name)

    @property
    def guest_config_path(self) -> str:
        return f"{GUEST_WORKLOAD_DIR}/synthetic/{self.name}.cfg"

    def available(self, context: WorkloadContext) -> tuple[bool, str]:
        if not self.config_path.is_file():
            return False, f"config {self.config_path} is missing"
        if context.guest_packages is not None and "gcc" not in context.guest_packages:
            return False, "the guest image has no gcc to build accgen (Debian package gcc)"
        return True, "accgen, built in the guest with gcc"

    def version(self, context: WorkloadContext) -> str:
        return f"accgen+{self.name}.cfg:{files_digest(ACCGEN_SOURCE_PATH, self.config_path)}"

    def prepare(self, context: WorkloadContext, params: RunParams) -> PreparePlan:
        source = f"{GUEST_SRC_DIR}/accgen.c"
        digest = files_digest(ACCGEN_SOURCE_PATH)
        return PreparePlan(
            uploads=(
                Upload(ACCGEN_SOURCE_PATH, source),
                Upload(self.config_path, self.guest_config_path),
            ),
            commands=(
                f"mkdir -p {GUEST_BIN_DIR}",
                " ".join(accgen_compile_command(GUEST_ACCGEN_PATH, source)),
            ),
            # rebuilt when accgen.c changes; configs are uploaded every time
            stamp=f"{GUEST_BIN_DIR}/.accgen-{digest}",
        )

    def run_plan(self, context: WorkloadContext, params: RunParams) -> RunPlan:
        return RunPlan(
            command=(
                GUEST_ACCGEN_PATH,
                "--scale",
                f"{params.scale:g}",
                "--truth",
                f"{params.out_dir}/{TRUTH_FILE_NAME}",
                self.guest_config_path,
            ),
            hold="exec",
            target="accgen",
            expected_runtime_s=self.seconds_at_scale_1 * params.scale,
            work_based=False,
        )


def synthetic_workloads() -> list[Workload]:
    return [
        SyntheticWorkload(name=name, description=description, seconds_at_scale_1=seconds)
        for name, (description, seconds) in SYNTHETIC_CONFIGS.items()
    ]
