"""Carbon intensity of the electricity a run uses, and the CO₂ that follows from its energy.

``EnergyCallback(carbon_intensity=...)`` accepts

* ``None`` (the default): no CO₂ is reported and no country is guessed;
* a number: the grid's carbon intensity in grams CO₂-equivalent per kWh (``source="user"``);
* a country code, ISO 3166 alpha-2 (``"FR"``) or alpha-3 (``"FRA"``), case-insensitive: the country's
  average intensity from the per-country table bundled with CodeCarbon (``global_energy_mix.json``),
  read from disk without importing CodeCarbon and without any network access.

The data centre's power usage effectiveness (``pue``, facility energy / IT energy, >= 1.0) is kept apart
from the grid intensity: ``co2_kg = energy_kwh x pue x g_per_kwh / 1000``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_energy._validate import finite_number
from lightning_energy.errors import CarbonDataError

__all__ = [
    "CODECARBON_MIX_FIELDS",
    "CarbonDataError",
    "CarbonIntensity",
    "country_intensity",
    "resolve_carbon_intensity",
]

# Where CodeCarbon keeps its per-country energy mix, relative to the installed ``codecarbon`` package.
_CODECARBON_MIX_PATH = ("data", "private_infra", "global_energy_mix.json")
# The fields of one country entry that we rely on (``tests/test_carbon.py`` fails if CodeCarbon drops one).
CODECARBON_MIX_FIELDS = ("carbon_intensity", "country_name", "iso_code", "year")

# ISO 3166-1 alpha-2 -> alpha-3 for every country in CodeCarbon's table ("FR" -> "FRA"), as "AA:AAA" pairs.
_ALPHA2_TO_ALPHA3_TABLE = """
AE:ARE AF:AFG AG:ATG AL:ALB AM:ARM AO:AGO AR:ARG AS:ASM AT:AUT AU:AUS AW:ABW AZ:AZE BA:BIH BB:BRB
BD:BGD BE:BEL BF:BFA BG:BGR BH:BHR BI:BDI BJ:BEN BM:BMU BN:BRN BO:BOL BR:BRA BS:BHS BT:BTN BW:BWA
BY:BLR BZ:BLZ CA:CAN CD:COD CF:CAF CG:COG CH:CHE CI:CIV CK:COK CL:CHL CM:CMR CN:CHN CO:COL CR:CRI
CU:CUB CV:CPV CY:CYP CZ:CZE DE:DEU DJ:DJI DK:DNK DM:DMA DO:DOM DZ:DZA EC:ECU EE:EST EG:EGY EH:ESH
ER:ERI ES:ESP ET:ETH FI:FIN FJ:FJI FK:FLK FO:FRO FR:FRA GA:GAB GB:GBR GD:GRD GE:GEO GF:GUF GH:GHA
GI:GIB GL:GRL GM:GMB GN:GIN GP:GLP GQ:GNQ GR:GRC GT:GTM GU:GUM GW:GNB GY:GUY HK:HKG HN:HND HR:HRV
HT:HTI HU:HUN ID:IDN IE:IRL IL:ISR IN:IND IQ:IRQ IR:IRN IS:ISL IT:ITA JM:JAM JO:JOR JP:JPN KE:KEN
KG:KGZ KH:KHM KI:KIR KM:COM KN:KNA KP:PRK KR:KOR KW:KWT KY:CYM KZ:KAZ LA:LAO LB:LBN LC:LCA LK:LKA
LR:LBR LS:LSO LT:LTU LU:LUX LV:LVA LY:LBY MA:MAR MD:MDA ME:MNE MG:MDG MK:MKD ML:MLI MM:MMR MN:MNG
MO:MAC MQ:MTQ MR:MRT MS:MSR MT:MLT MU:MUS MV:MDV MW:MWI MX:MEX MY:MYS MZ:MOZ NA:NAM NC:NCL NE:NER
NG:NGA NI:NIC NL:NLD NO:NOR NP:NPL NR:NRU NZ:NZL OM:OMN PA:PAN PE:PER PF:PYF PG:PNG PH:PHL PK:PAK
PL:POL PM:SPM PR:PRI PS:PSE PT:PRT PY:PRY QA:QAT RE:REU RO:ROU RS:SRB RU:RUS RW:RWA SA:SAU SB:SLB
SC:SYC SD:SDN SE:SWE SG:SGP SH:SHN SI:SVN SK:SVK SL:SLE SN:SEN SO:SOM SR:SUR SS:SSD ST:STP SV:SLV
SY:SYR SZ:SWZ TC:TCA TD:TCD TG:TGO TH:THA TJ:TJK TL:TLS TM:TKM TN:TUN TO:TON TR:TUR TT:TTO TW:TWN
TZ:TZA UA:UKR UG:UGA US:USA UY:URY UZ:UZB VC:VCT VE:VEN VG:VGB VI:VIR VN:VNM VU:VUT WS:WSM YE:YEM
ZA:ZAF ZM:ZMB ZW:ZWE
"""
ALPHA2_TO_ALPHA3: dict[str, str] = dict(pair.split(":") for pair in _ALPHA2_TO_ALPHA3_TABLE.split())

_HOW_TO_PASS = (
    "Pass an ISO 3166 country code known to CodeCarbon, alpha-2 or alpha-3 (e.g. carbon_intensity='FR' or "
    "'FRA'), or your grid's carbon intensity in grams CO2e per kWh as a number "
    "(e.g. carbon_intensity=350.0), or None to report no CO2."
)

_PUE_MEANING = "(power usage effectiveness, facility/IT energy)"


def _check_number(name: str, value: object, *, minimum: float, meaning: str) -> float:
    """``value`` as a finite float >= ``minimum``, or a ValueError/TypeError naming ``name``."""
    try:
        return finite_number(name, value, minimum=minimum, what=f"a number {meaning}")
    except ValueError as err:
        raise ValueError(f"{err} {meaning}") from None


@dataclass(frozen=True)
class CarbonIntensity:
    """Grid carbon intensity and data-centre PUE, enough to turn energy into CO₂.

    ``g_per_kwh`` is the grid's intensity alone (grams CO₂e per kWh drawn from the grid); ``pue`` scales the
    measured IT energy up to the facility's energy. ``year`` is the year of the source data when known.
    """

    g_per_kwh: float
    pue: float = 1.0
    source: str = "user"
    year: int | None = None
    country_iso3: str | None = None
    country_name: str | None = None

    def __post_init__(self) -> None:
        _check_number("g_per_kwh", self.g_per_kwh, minimum=0.0, meaning="(grams CO2e per kWh)")
        _check_number("pue", self.pue, minimum=1.0, meaning=_PUE_MEANING)

    def co2_kg(self, energy_kwh: float) -> float:
        """Kilograms CO₂e for ``energy_kwh`` of measured (IT) energy.

        ``co2_kg = energy_kwh x pue x g_per_kwh / 1000``.
        """
        _check_number("energy_kwh", energy_kwh, minimum=0.0, meaning="(kWh)")
        return float(energy_kwh) * self.pue * self.g_per_kwh / 1000.0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (the report's ``carbon`` section adds ``co2_kg`` to it)."""
        return {
            "g_per_kwh": self.g_per_kwh,
            "pue": self.pue,
            "source": self.source,
            "year": self.year,
            "country_iso3": self.country_iso3,
            "country_name": self.country_name,
        }


def _codecarbon_mix_file() -> Path:
    """Path of CodeCarbon's ``global_energy_mix.json``, found without importing CodeCarbon."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise CarbonDataError(
            "carbon_intensity was given as a country code, which needs CodeCarbon's per-country data, but "
            "codecarbon is not installed (pip install codecarbon). " + _HOW_TO_PASS
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_CODECARBON_MIX_PATH)
    if not path.is_file():
        raise CarbonDataError(f"CodeCarbon's per-country data is missing: no file {path}. " + _HOW_TO_PASS)
    return path


@functools.lru_cache(maxsize=1)
def _read_codecarbon_mix() -> dict[str, dict[str, Any]]:
    """CodeCarbon's per-country energy mix, keyed by ISO alpha-3 code. The only place that reads the file."""
    path = _codecarbon_mix_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CarbonDataError(f"Cannot read CodeCarbon's per-country data {path}: {err}") from err
    if not isinstance(data, dict) or not all(isinstance(entry, dict) for entry in data.values()):
        raise CarbonDataError(f"Unexpected layout in {path}: expected {{ISO3: {{field: value}}}}")
    return data


def _codecarbon_version() -> str:
    try:
        return importlib.metadata.version("codecarbon")
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def _to_alpha3(code: str) -> str:
    """Upper-case ISO alpha-3 code for an alpha-2 or alpha-3 ``code``; ValueError if it is neither."""
    upper = code.strip().upper()
    if len(upper) == 2 and upper.isalpha():
        if upper not in ALPHA2_TO_ALPHA3:
            raise ValueError(
                f"carbon_intensity: unknown country code {code!r} (no ISO alpha-2 code {upper!r} among the "
                f"{len(ALPHA2_TO_ALPHA3)} countries in CodeCarbon's data). " + _HOW_TO_PASS
            )
        return ALPHA2_TO_ALPHA3[upper]
    if len(upper) == 3 and upper.isalpha():
        return upper
    raise ValueError(f"carbon_intensity: {code!r} is neither a number nor a country code. " + _HOW_TO_PASS)


def country_intensity(country: str, *, pue: float = 1.0) -> CarbonIntensity:
    """The average grid intensity of ``country`` (ISO alpha-2 or alpha-3) from CodeCarbon's bundled data."""
    iso3 = _to_alpha3(country)
    mix = _read_codecarbon_mix()
    entry = mix.get(iso3)
    if entry is None:
        raise ValueError(
            f"carbon_intensity: unknown country {country!r} (no entry {iso3!r} in CodeCarbon's data, which "
            f"covers {len(mix)} countries). " + _HOW_TO_PASS
        )
    raw = entry.get("carbon_intensity")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise CarbonDataError(
            f"CodeCarbon's data has no numeric carbon_intensity for {iso3} (got {raw!r}). " + _HOW_TO_PASS
        )
    year = entry.get("year")
    return CarbonIntensity(
        g_per_kwh=float(raw),
        pue=pue,
        source=f"codecarbon {_codecarbon_version()} global_energy_mix.json",
        year=year if isinstance(year, int) and not isinstance(year, bool) else None,
        country_iso3=iso3,
        country_name=str(entry.get("country_name") or iso3),
    )


def resolve_carbon_intensity(
    carbon_intensity: float | str | CarbonIntensity | None, *, pue: float = 1.0
) -> CarbonIntensity | None:
    """Turn the callback's ``carbon_intensity`` argument into a :class:`CarbonIntensity` (or ``None``).

    Args:
        carbon_intensity: ``None`` (no CO₂), grams CO₂e per kWh (a number >= 0, or a string holding one),
            an ISO alpha-2/alpha-3 country code, or a ready :class:`CarbonIntensity`.
        pue: power usage effectiveness of the data centre, >= 1.0.

    Raises:
        ValueError/TypeError: naming the argument, what is allowed and what was given.
        CarbonDataError: a country code was given but CodeCarbon's data is unavailable.
    """
    pue_value = _check_number(
        "pue", pue, minimum=1.0, meaning="(power usage effectiveness, facility/IT energy)"
    )
    if carbon_intensity is None:
        return None
    if isinstance(carbon_intensity, CarbonIntensity):
        if pue_value != 1.0 and pue_value != carbon_intensity.pue:
            raise ValueError(
                f"pue={pue!r} conflicts with carbon_intensity.pue={carbon_intensity.pue!r}; give the PUE once"
            )
        return carbon_intensity
    if isinstance(carbon_intensity, str):
        text = carbon_intensity.strip()
        try:
            number = float(text)
        except ValueError:
            return country_intensity(text, pue=pue_value)
        return resolve_carbon_intensity(number, pue=pue_value)
    if isinstance(carbon_intensity, bool) or not isinstance(carbon_intensity, numbers.Real):
        raise TypeError(
            "carbon_intensity must be None, a number (grams CO2e per kWh) or a country code string; got "
            f"{carbon_intensity!r} ({type(carbon_intensity).__name__})"
        )
    grams = _check_number("carbon_intensity", carbon_intensity, minimum=0.0, meaning="(grams CO2e per kWh)")
    return CarbonIntensity(g_per_kwh=grams, pue=pue_value, source="user")
