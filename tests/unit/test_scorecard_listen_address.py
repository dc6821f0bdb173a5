"""`gpucost scorecard --serve --web.listen-address`: read by `gpucost.listen_address`, refused in the scorecard's words.

The scorecard once borrowed the budgets sidecar's parser, which tied gpucost.scorecard to
gpucost.budgets in a cycle (#18); the wording and the IPv4 default stayed.
"""

from __future__ import annotations

import pytest

from gpucost.scorecard.cli import main


@pytest.mark.parametrize("address", ["localhost", ":99999", "host name:9837"])
def test_scorecard_refuses_a_bad_listen_address_in_one_line_with_exit_code_2(
    address: str, capsys: pytest.CaptureFixture[str],
) -> None:
    exit_code = main(["--prometheus", "http://127.0.0.1:1", "--serve", f"--web.listen-address={address}"])

    assert exit_code == 2
    assert capsys.readouterr().err == (
        f"gpucost scorecard: --web.listen-address: must be [host]:port, e.g. :9837 (got {address!r})\n"
    )
