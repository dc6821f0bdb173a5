"""Re-export: the fake kubelet lives in `gpucost.testing.fake_kubelet` so that the demo can use it too."""

from __future__ import annotations

from gpucost.testing.fake_kubelet import FakeKubelet, GetMode

__all__ = ["FakeKubelet", "GetMode"]
