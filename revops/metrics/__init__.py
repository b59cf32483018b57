"""The metric registry and its tiers; importing this package registers every metric."""
from revops.metrics import diagnostic, leading, north_star, operational  # noqa: F401  (registers)
from revops.metrics import series_usage  # noqa: F401  (registers the usage metrics' series)
from revops.metrics import series_revenue  # noqa: F401  (registers the revenue metrics' series)
from revops.metrics import series_deals, series_leads  # noqa: F401  (registers the deal and lead metrics' series)
from revops.metrics.registry import BY_ID, REGISTRY, TIERS, Metric, MetricResult, by_tier, compute, scalar_metrics

__all__ = ["BY_ID", "REGISTRY", "TIERS", "Metric", "MetricResult", "by_tier", "compute", "scalar_metrics"]
