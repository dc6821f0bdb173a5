"""The contracts of gpucost, one table each: exporter metrics, recorded series, budget tiers.

Rules, the Alertmanager configuration, the Slack template's tier texts, budget validation
and the docs are generated from or checked against these tables; tests/unit/test_contract.py
fails when a rule, dashboard, template or doc names a series no table holds.
"""

from __future__ import annotations

from gpucost.contract import metrics, recorded, tiers

__all__ = ["metrics", "recorded", "tiers"]
