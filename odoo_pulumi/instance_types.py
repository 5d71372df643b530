"""The AWS instance types odoo-pulumi chooses from, with what sizing needs to know.

Odoo's worker rule counts CPU *cores*, and an AWS vCPU is not always one: it is a
physical core on Graviton (t4g, c7g, m7g, c8g, m8g, r8g) and on AMD's 7th generation
(c7a, m7a), but one of the two hyperthreads of a core on Intel (t3, c7i, m7i). Each type
therefore carries its published threads per core (AWS, "CPU options for Amazon EC2
instances": the default threads per core of every type), and `cores` derives from it.

Prices: us-east-1, Linux, on-demand, USD per hour; other regions cost somewhat more.
- t3, t4g, c7i, c7g, m7i, m7g: AWS's on-demand price list as copied into this file in
  2025 (https://aws.amazon.com/ec2/pricing/on-demand/); m7g.large $0.0816 and t3.large
  $0.0832 re-checked against public pages of 2026 (factualminds.com "EC2 On-Demand
  pricing ... (2026)", 2026-06-17; go-cloud.io EC2 pricing guide, 2026).
- c7a, m7a, c8g, m8g, r8g (added 2026-12-01): the same AWS price list as remembered by
  the author of this change; this session had no internet and could NOT verify them
  against AWS. One public corroboration was found: c7a.xlarge $0.20528/h in a public
  repository's cost model (2026). Check before relying on them:
  `aws pricing get-products --service-code AmazonEC2 --region us-east-1 --filters
  Type=TERM_MATCH,Field=instanceType,Value=c8g.xlarge ...`.
Only current general-purpose (m7/m8), compute (c7/c8), memory (r8g) and burstable
(t3/t4g) families are listed, from 2 to 48 vCPUs: the range an Odoo server with its own
PostgreSQL needs. Every size of a family scales linearly in price, so one price per
vCPU would do; the table spells each one out so that a reader can compare with AWS.
"""

from __future__ import annotations

from dataclasses import dataclass

HOURS_PER_MONTH = 730  # AWS's own convention for monthly estimates
PRICES_CHECKED = "2026-12-01"  # see the module docstring for what was and was not verified


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    arch: str  # "x86_64" or "arm64", as the Ubuntu AMI names them
    usd_per_hour: float
    burstable: bool
    threads_per_core: int = 1  # 2 on Intel types: two vCPUs share one core

    @property
    def cores(self) -> int:
        """Physical cores: what Odoo's "2 x CPU + 1" rule counts."""
        return self.vcpus // self.threads_per_core

    @property
    def monthly_usd(self) -> float:
        return round(self.usd_per_hour * HOURS_PER_MONTH, 2)


# Threads per core by family (AWS "CPU options": default threads per core).
THREADS_PER_CORE = {
    "t3": 2, "c7i": 2, "m7i": 2,  # Intel: Hyper-Threading
    "c7a": 1, "m7a": 1,  # AMD 4th-gen EPYC: SMT off, one core per vCPU
    "t4g": 1, "c7g": 1, "m7g": 1, "c8g": 1, "m8g": 1, "r8g": 1,  # Graviton2/3/4
}
ARCH = {family: "arm64" if family.endswith("g") else "x86_64" for family in THREADS_PER_CORE}


def _t(name: str, vcpus: int, gib: int, price: float, burstable: bool = False) -> InstanceType:
    family = name.split(".")[0]
    return InstanceType(name, vcpus, gib * 1024, ARCH[family], price, burstable, THREADS_PER_CORE[family])


CATALOGUE: tuple[InstanceType, ...] = (
    # burstable: fine for a small office whose load comes in bursts
    _t("t3.small", 2, 2, 0.0208, True),
    _t("t3.medium", 2, 4, 0.0416, True),
    _t("t3.large", 2, 8, 0.0832, True),
    _t("t3.xlarge", 4, 16, 0.1664, True),
    _t("t3.2xlarge", 8, 32, 0.3328, True),
    _t("t4g.small", 2, 2, 0.0168, True),
    _t("t4g.medium", 2, 4, 0.0336, True),
    _t("t4g.large", 2, 8, 0.0672, True),
    _t("t4g.xlarge", 4, 16, 0.1344, True),
    _t("t4g.2xlarge", 8, 32, 0.2688, True),
    # compute optimised: 2 GiB per vCPU
    _t("c7i.large", 2, 4, 0.08925),
    _t("c7i.xlarge", 4, 8, 0.1785),
    _t("c7i.2xlarge", 8, 16, 0.357),
    _t("c7i.4xlarge", 16, 32, 0.714),
    _t("c7i.8xlarge", 32, 64, 1.428),
    _t("c7i.12xlarge", 48, 96, 2.142),
    _t("c7a.large", 2, 4, 0.10264),
    _t("c7a.xlarge", 4, 8, 0.20528),
    _t("c7a.2xlarge", 8, 16, 0.41056),
    _t("c7a.4xlarge", 16, 32, 0.82112),
    _t("c7a.8xlarge", 32, 64, 1.64224),
    _t("c7a.12xlarge", 48, 96, 2.46336),
    _t("c7g.large", 2, 4, 0.0725),
    _t("c7g.xlarge", 4, 8, 0.145),
    _t("c7g.2xlarge", 8, 16, 0.289),
    _t("c7g.4xlarge", 16, 32, 0.578),
    _t("c7g.8xlarge", 32, 64, 1.156),
    _t("c7g.12xlarge", 48, 96, 1.734),
    _t("c8g.large", 2, 4, 0.07976),
    _t("c8g.xlarge", 4, 8, 0.15952),
    _t("c8g.2xlarge", 8, 16, 0.31904),
    _t("c8g.4xlarge", 16, 32, 0.63808),
    _t("c8g.8xlarge", 32, 64, 1.27616),
    _t("c8g.12xlarge", 48, 96, 1.91424),
    # general purpose: 4 GiB per vCPU
    _t("m7i.large", 2, 8, 0.1008),
    _t("m7i.xlarge", 4, 16, 0.2016),
    _t("m7i.2xlarge", 8, 32, 0.4032),
    _t("m7i.4xlarge", 16, 64, 0.8064),
    _t("m7i.8xlarge", 32, 128, 1.6128),
    _t("m7i.12xlarge", 48, 192, 2.4192),
    _t("m7a.large", 2, 8, 0.11592),
    _t("m7a.xlarge", 4, 16, 0.23184),
    _t("m7a.2xlarge", 8, 32, 0.46368),
    _t("m7a.4xlarge", 16, 64, 0.92736),
    _t("m7a.8xlarge", 32, 128, 1.85472),
    _t("m7a.12xlarge", 48, 192, 2.78208),
    _t("m7g.large", 2, 8, 0.0816),
    _t("m7g.xlarge", 4, 16, 0.1632),
    _t("m7g.2xlarge", 8, 32, 0.3264),
    _t("m7g.4xlarge", 16, 64, 0.6528),
    _t("m7g.8xlarge", 32, 128, 1.3056),
    _t("m7g.12xlarge", 48, 192, 1.9584),
    _t("m8g.large", 2, 8, 0.08976),
    _t("m8g.xlarge", 4, 16, 0.17952),
    _t("m8g.2xlarge", 8, 32, 0.35904),
    _t("m8g.4xlarge", 16, 64, 0.71808),
    _t("m8g.8xlarge", 32, 128, 1.43616),
    _t("m8g.12xlarge", 48, 192, 2.15424),
    # memory optimised: 8 GiB per vCPU (large databases beside Odoo)
    _t("r8g.large", 2, 16, 0.11782),
    _t("r8g.xlarge", 4, 32, 0.23564),
    _t("r8g.2xlarge", 8, 64, 0.47128),
    _t("r8g.4xlarge", 16, 128, 0.94256),
    _t("r8g.8xlarge", 32, 256, 1.88512),
    _t("r8g.12xlarge", 48, 384, 2.82768),
)

BY_NAME: dict[str, InstanceType] = {t.name: t for t in CATALOGUE}
