"""The AWS instance types odoo-pulumi chooses from, with what sizing needs to know.

Figures are AWS's published specifications and us-east-1 Linux on-demand prices
(USD per hour) as listed by AWS in 2025; other regions cost somewhat more. Only
current general-purpose (m7), compute (c7) and burstable (t3/t4g) families are
listed: they cover 2 to 48 vCPUs with 2 to 4 GiB per vCPU, which is the range
an Odoo server with its own PostgreSQL needs.
"""

from __future__ import annotations

from dataclasses import dataclass

HOURS_PER_MONTH = 730  # AWS's own convention for monthly estimates


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    arch: str  # "x86_64" or "arm64", as the Ubuntu AMI names them
    usd_per_hour: float
    burstable: bool

    @property
    def monthly_usd(self) -> float:
        return round(self.usd_per_hour * HOURS_PER_MONTH, 2)


def _t(name: str, vcpus: int, gib: int, arch: str, price: float, burstable: bool = False) -> InstanceType:
    return InstanceType(name, vcpus, gib * 1024, arch, price, burstable)


CATALOGUE: tuple[InstanceType, ...] = (
    # burstable: fine for a small office whose load comes in bursts
    _t("t3.small", 2, 2, "x86_64", 0.0208, True),
    _t("t3.medium", 2, 4, "x86_64", 0.0416, True),
    _t("t3.large", 2, 8, "x86_64", 0.0832, True),
    _t("t3.xlarge", 4, 16, "x86_64", 0.1664, True),
    _t("t3.2xlarge", 8, 32, "x86_64", 0.3328, True),
    _t("t4g.small", 2, 2, "arm64", 0.0168, True),
    _t("t4g.medium", 2, 4, "arm64", 0.0336, True),
    _t("t4g.large", 2, 8, "arm64", 0.0672, True),
    _t("t4g.xlarge", 4, 16, "arm64", 0.1344, True),
    _t("t4g.2xlarge", 8, 32, "arm64", 0.2688, True),
    # compute optimised: 2 GiB per vCPU
    _t("c7i.large", 2, 4, "x86_64", 0.08925),
    _t("c7i.xlarge", 4, 8, "x86_64", 0.1785),
    _t("c7i.2xlarge", 8, 16, "x86_64", 0.357),
    _t("c7i.4xlarge", 16, 32, "x86_64", 0.714),
    _t("c7i.8xlarge", 32, 64, "x86_64", 1.428),
    _t("c7i.12xlarge", 48, 96, "x86_64", 2.142),
    _t("c7g.large", 2, 4, "arm64", 0.0725),
    _t("c7g.xlarge", 4, 8, "arm64", 0.145),
    _t("c7g.2xlarge", 8, 16, "arm64", 0.289),
    _t("c7g.4xlarge", 16, 32, "arm64", 0.578),
    _t("c7g.8xlarge", 32, 64, "arm64", 1.156),
    _t("c7g.12xlarge", 48, 96, "arm64", 1.734),
    # general purpose: 4 GiB per vCPU
    _t("m7i.large", 2, 8, "x86_64", 0.1008),
    _t("m7i.xlarge", 4, 16, "x86_64", 0.2016),
    _t("m7i.2xlarge", 8, 32, "x86_64", 0.4032),
    _t("m7i.4xlarge", 16, 64, "x86_64", 0.8064),
    _t("m7i.8xlarge", 32, 128, "x86_64", 1.6128),
    _t("m7i.12xlarge", 48, 192, "x86_64", 2.4192),
    _t("m7g.large", 2, 8, "arm64", 0.0816),
    _t("m7g.xlarge", 4, 16, "arm64", 0.1632),
    _t("m7g.2xlarge", 8, 32, "arm64", 0.3264),
    _t("m7g.4xlarge", 16, 64, "arm64", 0.6528),
    _t("m7g.8xlarge", 32, 128, "arm64", 1.3056),
    _t("m7g.12xlarge", 48, 192, "arm64", 1.9584),
)

BY_NAME: dict[str, InstanceType] = {t.name: t for t in CATALOGUE}
