"""RevOps cockpit library: canonical tables, ingest, metrics, funnel, handoffs, forecasts."""
