"""Vertex AI generative SKUs and the Gemini services: ServiceSubcategory Generative AI."""

from __future__ import annotations

from decimal import Decimal

from shared.sources.gcp import mapping, reader
from tests.integration.conftest import Platform
from tests.integration.focus_support import make_tenant
from tests.integration.test_focus_golden import DAY, row


def service(description: str) -> dict[str, str]:
    return {"id": "C7E2-9256-1C43", "description": description}


def test_gemini_rows_are_generative_ai_and_other_vertex_rows_stay_ai_platforms(
    platform: Platform,
) -> None:
    tenant = make_tenant(platform)
    tenant.seed(
        [
            row("Gemini 1.5 Flash Input Characters", service=service("Vertex AI"), cost=0.25),
            row("Imagen 3 Image Generation", service=service("Vertex AI"), cost=0.5),
            row("Custom Training n1-standard-4", service=service("Vertex AI"), cost=1.0),
            row("Generate content input tokens", service=service("Gemini API"), cost=2.0),
            row("N1 Predefined Instance Core", cost=4.0),
        ]
    )
    reader.extract(tenant.ctx("extract", DAY, lookback_days=0))
    mapping.convert_gcp(tenant.ctx("convert", DAY, lookback_days=0))
    mapping.check_gcp(tenant.ctx("quality", DAY, lookback_days=0))

    got = {
        r["ChargeDescription"]: (r["ServiceCategory"], r["ServiceSubcategory"])
        for r in tenant.query(
            "SELECT ChargeDescription, ServiceCategory, ServiceSubcategory FROM {focus}"
        )
    }
    genai = ("AI and Machine Learning", "Generative AI")
    assert got == {
        "Gemini 1.5 Flash Input Characters": genai,
        "Imagen 3 Image Generation": genai,
        "Custom Training n1-standard-4": ("AI and Machine Learning", "AI Platforms"),
        "Generate content input tokens": genai,
        "N1 Predefined Instance Core": ("Compute", "Virtual Machines"),
    }
    # One query finds all GenAI spend, whatever the provider.
    total = tenant.query(
        "SELECT SUM(BilledCost) AS b FROM {focus} WHERE ServiceSubcategory = 'Generative AI'"
    )
    assert total[0]["b"] == Decimal("2.75")
