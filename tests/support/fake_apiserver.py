"""Re-export: the fake API server lives in `gpucost.testing.fake_apiserver` so that the demo can use it too."""

from __future__ import annotations

from gpucost.testing.fake_apiserver import DEFAULT_RESOURCES, FakeApiServer, JsonObject, Resource, SeenRequest

__all__ = ["DEFAULT_RESOURCES", "FakeApiServer", "JsonObject", "Resource", "SeenRequest"]
