"""Kubernetes quantities as the API server writes them become cores and bytes; anything else is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.quantity import MAX_QUANTITY, MAX_QUANTITY_CHARS, parse_quantity

BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(10**3),
           "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
           "E": Decimal(10**18)}


@pytest.mark.parametrize(("text", "amount"), [
    ("500m", 0.5), ("2", 2.0), ("1Gi", 2.0**30), ("512Mi", 512 * 2.0**20), ("1e9", 1e9), ("1G", 1e9),
    ("100n", 1e-7), ("1.5", 1.5), (".5", 0.5), ("1.", 1.0), ("+3k", 3000.0), ("1E3", 1000.0), ("2e-3", 0.002),
    ("1E", 1e18), ("0", 0.0), (" 250m ", 0.25), ("64Ki", 65536.0), ("7Ti", 7 * 2.0**40),
])
def test_the_suffixes_of_the_kubernetes_grammar(text: str, amount: float) -> None:
    assert parse_quantity(text) == pytest.approx(amount, rel=1e-15)


@pytest.mark.parametrize("text", [
    "-1", "-500m", "1e", "abc", "", "1 Gi", "1gi", "1GiB", "1KB", "0x10", "1/2", "1e1000", "9" * 30 + "E",
    "٣", "1.2.3", "e3", "Gi", "nan", "inf", "1" * (MAX_QUANTITY_CHARS + 1),
])
def test_what_is_not_a_valid_request_is_refused(text: str) -> None:
    assert parse_quantity(text) is None


@pytest.mark.parametrize(("value", "amount"), [(2, 2.0), (0.5, 0.5), (True, None), (None, None), ([], None),
                                               (-1, None), (float("nan"), None), (float("inf"), None)])
def test_numbers_are_taken_as_they_are_and_other_types_refused(value: object, amount: float | None) -> None:
    assert parse_quantity(value) == amount


def test_the_api_servers_63_bit_limit_is_the_largest_quantity() -> None:
    assert parse_quantity("8Ei") is None  # 2**63: one past int64
    assert parse_quantity("7Ei") == 7 * 2.0**60
    assert parse_quantity(str(2**63 - 1)) == MAX_QUANTITY


def _expected(exact: Decimal) -> float | None:
    return float(exact) if exact <= 2**63 - 1 else None


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(BINARY)))
def test_a_binary_suffix_multiplies_by_its_power_of_two(number: int, suffix: str) -> None:
    assert parse_quantity(f"{number}{suffix}") == _expected(Decimal(number * BINARY[suffix]))


@given(st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
       st.sampled_from(sorted(DECIMAL)))
def test_a_decimal_suffix_multiplies_by_its_power_of_ten(number: Decimal, suffix: str) -> None:
    assert parse_quantity(f"{number:f}{suffix}") == _expected(number * DECIMAL[suffix])


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=-12, max_value=18))
def test_an_exponent_is_a_power_of_ten(number: int, exponent: int) -> None:
    assert parse_quantity(f"{number}e{exponent}") == _expected(Decimal(number) * Decimal(10) ** exponent)


@given(st.text(max_size=80))
def test_any_text_is_a_non_negative_finite_amount_or_refused(text: str) -> None:
    amount = parse_quantity(text)
    assert amount is None or 0.0 <= amount <= MAX_QUANTITY
