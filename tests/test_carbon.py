"""Carbon intensity: numbers, country codes from CodeCarbon's bundled data, PUE, validation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lightning_energy import carbon
from lightning_energy.carbon import (
    ALPHA2_TO_ALPHA3,
    CODECARBON_MIX_FIELDS,
    CarbonDataError,
    CarbonIntensity,
    resolve_carbon_intensity,
)


def test_none_means_no_co2() -> None:
    assert resolve_carbon_intensity(None) is None
    assert resolve_carbon_intensity(None, pue=1.5) is None


def test_number_is_grams_per_kwh_from_user() -> None:
    ci = resolve_carbon_intensity(400, pue=1.5)
    assert ci == CarbonIntensity(g_per_kwh=400.0, pue=1.5, source="user")
    # 2 kWh x 1.5 x 400 g/kWh = 1200 g
    assert ci.co2_kg(2.0) == pytest.approx(1.2)
    assert resolve_carbon_intensity(" 250.5 ") == CarbonIntensity(g_per_kwh=250.5)
    assert resolve_carbon_intensity(0.0) == CarbonIntensity(g_per_kwh=0.0)


@pytest.mark.parametrize("code", ["FR", "fr", "FRA", "fra", " Fra "])
def test_country_code_alpha2_and_alpha3(code: str) -> None:
    ci = resolve_carbon_intensity(code, pue=1.1)
    assert ci is not None
    assert ci.country_iso3 == "FRA"
    assert ci.country_name == "France"
    assert ci.pue == 1.1
    assert 0 < ci.g_per_kwh < 200  # nuclear-heavy grid
    assert ci.source.startswith("codecarbon ") and ci.source.endswith("global_energy_mix.json")
    assert ci.year is not None and 2000 < ci.year < 2100
    assert ci.co2_kg(1.0) == pytest.approx(1.1 * ci.g_per_kwh / 1000)


def test_pue_is_kept_apart_from_intensity() -> None:
    plain = resolve_carbon_intensity("USA")
    with_pue = resolve_carbon_intensity("USA", pue=1.4)
    assert plain is not None and with_pue is not None
    assert with_pue.g_per_kwh == plain.g_per_kwh
    assert with_pue.co2_kg(3.0) == pytest.approx(1.4 * plain.co2_kg(3.0))


def test_to_dict_is_json_ready() -> None:
    ci = resolve_carbon_intensity("DE")
    assert ci is not None
    data = json.loads(json.dumps(ci.to_dict()))
    assert set(data) == {"g_per_kwh", "pue", "source", "year", "country_iso3", "country_name"}
    assert data["country_iso3"] == "DEU"


@pytest.mark.parametrize("code", ["XX", "ZZZ"])
def test_unknown_country_tells_how_to_pass_grams(code: str) -> None:
    with pytest.raises(ValueError, match="unknown country") as info:
        resolve_carbon_intensity(code)
    assert "grams CO2e per kWh" in str(info.value)
    assert code in str(info.value)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1.0, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("-5", ValueError),
        ("France!", ValueError),
        (True, TypeError),
        ([400], TypeError),
    ],
)
def test_bad_intensity_names_the_argument(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="carbon_intensity"):
        resolve_carbon_intensity(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("pue", "error"), [(0.9, ValueError), (-1, ValueError), ("1.2", TypeError)])
def test_bad_pue_names_the_argument(pue: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"pue .*got"):
        resolve_carbon_intensity(300.0, pue=pue)  # type: ignore[arg-type]
    with pytest.raises(error, match="pue"):
        resolve_carbon_intensity(None, pue=pue)  # type: ignore[arg-type]


def test_carbon_intensity_instance_passes_through() -> None:
    ci = CarbonIntensity(g_per_kwh=100.0, pue=1.3)
    assert resolve_carbon_intensity(ci) is ci
    with pytest.raises(ValueError, match="pue"):
        resolve_carbon_intensity(ci, pue=1.5)
    with pytest.raises(ValueError, match="g_per_kwh"):
        CarbonIntensity(g_per_kwh=-3.0)


def test_codecarbon_data_layout_is_what_we_read() -> None:
    """Fails loudly if a CodeCarbon release moves or reshapes global_energy_mix.json."""
    mix = carbon._read_codecarbon_mix()
    assert len(mix) > 150
    for iso3 in ("FRA", "USA", "DEU", "CHN", "IND"):
        entry = mix[iso3]
        missing = [name for name in CODECARBON_MIX_FIELDS if name not in entry]
        assert not missing, f"CodeCarbon's global_energy_mix.json lost fields {missing} for {iso3}"
        assert entry["iso_code"] == iso3
        assert isinstance(entry["carbon_intensity"], (int, float))
        assert isinstance(entry["year"], int)


def test_alpha2_table_covers_codecarbon_countries() -> None:
    mix = carbon._read_codecarbon_mix()
    assert set(ALPHA2_TO_ALPHA3.values()) == set(mix), "update ALPHA2_TO_ALPHA3 to CodeCarbon's countries"
    assert len(set(ALPHA2_TO_ALPHA3.values())) == len(ALPHA2_TO_ALPHA3)


def test_missing_codecarbon_gives_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(carbon.importlib.util, "find_spec", lambda name: None)
    carbon._read_codecarbon_mix.cache_clear()
    try:
        with pytest.raises(CarbonDataError, match="codecarbon is not installed"):
            resolve_carbon_intensity("FR")
        assert resolve_carbon_intensity(12.0) is not None  # numbers need no data
    finally:
        carbon._read_codecarbon_mix.cache_clear()


def test_country_lookup_does_not_import_codecarbon_or_nvml() -> None:
    code = (
        "import sys; from lightning_energy.carbon import resolve_carbon_intensity; "
        "resolve_carbon_intensity('FR'); "
        "bad = [m for m in ('codecarbon', 'pynvml') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
