"""PHI values from broad offline pools, composed from parts, for the synthetic corpora that train and test the
de-identification tagger.

People, companies, streets and cities come from Faker's locales (offline data shipped in the package). Every
string-valued pool is split in two disjoint *partitions* by a hash of the value: ``"train"`` (about 70 %: the
tagger's training generator) and ``"test"`` (the rest: the separately coded test generator). A test name can
therefore never have been seen in training, whatever locale it comes from. Identifiers, phone numbers and dates are
composed from parts (prefixes, separators, grouping, lengths, partial forms), not drawn from a list.
"""

from __future__ import annotations

import hashlib
import random
import string
from datetime import date as _date
from functools import lru_cache
from typing import Any

__all__ = ["PhiValues", "in_partition", "MEDICAL_SURNAMES", "PARTICLES"]

#: surnames that are also medical words (eponyms, symptoms): names in some contexts, not PHI in others
MEDICAL_SURNAMES = ["Bell", "Parkinson", "Hodgkin", "Graves", "Crohn", "Addison", "Cushing", "Wilson", "Baker", "Frost", "Cox", "Hart",
                    "Banks", "Stone", "Moss", "Burns", "Payne", "Still", "Marfan", "Raynaud", "Horner", "Bright", "Paget", "Reiter",
                    "Sjogren", "Tourette", "Down", "Kawasaki", "Hunter", "Turner", "Fallot", "Guillain", "Barrett", "Whipple", "Ludwig",
                    "Colles", "Wolff", "Charcot", "Cullen", "Murphy", "Homan", "Kernig", "Brown", "Well", "Lyme", "Gray", "Heart", "Lung",
                    "Chest", "Fever", "Skin", "Bone", "Blood", "Head", "Hand", "Foot", "Back", "Knee", "Cross", "Care", "Cole", "Rose",
                    "Pain", "Glass", "Cook", "Nurse", "Doctor", "Page", "Sharp", "Young", "Short", "Long", "Strong", "Bloom"]


#: surname particles of many naming traditions (Irish, Scottish, Dutch, German, Romance, Arabic, Welsh, Norman):
#: ``variety`` corpora write some surnames with one ("Ó Briain", "van der Berg", "al-Rashid", "FitzGerald")
PARTICLES = ["Ó", "O'", "Ní", "Nic", "Mac", "Mc", "Ua", "van", "van der", "van den", "Van", "de", "De", "de la", "del", "della", "da", "das",
             "dos", "di", "Di", "von", "zu", "ter", "ten", "du", "Du", "Le", "La", "St-", "Ste-", "Saint-", "bin", "binti", "ibn", "Abu", "al-",
             "Al-", "el-", "El-", "ben", "Ben", "Fitz", "ap"]
#: specialties and unit words from which ``variety`` corpora compose organisation names
ORG_SPECIALTIES = ["Cardiology", "Dermatology", "Oncology", "Renal", "Fertility", "Physiotherapy", "Podiatry", "Orthodontics", "Eye", "Ophthalmology",
                   "Hearing", "Imaging", "Radiology", "Pathology", "Maternity", "Paediatric", "Pediatric", "Mental Health", "Addiction", "Pain",
                   "Vascular", "Spine", "Sports Medicine", "Allergy", "Diabetes", "Memory", "Stroke", "Urology", "Rheumatology", "Respiratory",
                   "Vision", "Chiropractic", "Hand Therapy", "Wellness", "Family Medicine", "Occupational Therapy", "Breast", "Bariatric",
                   "Hepatology", "Colorectal", "Neurorehabilitation", "Optometry", "Dental", "Pharmacy", "Diagnostics", "Infusion", "Rehab"]
ORG_UNITS = ["Unit", "Centre", "Center", "Clinic", "Service", "Services", "Associates", "Group", "Practice", "Institute", "Specialists",
             "Consultants", "Laboratory", "Lab", "Partnership", "Network", "Foundation", "Trust", "Suite", "Department", "Team", "Hub"]
ORG_LEGAL = ["Ltd", "Ltd.", "LLC", "GmbH", "S.A.", "PLC", "Inc.", "BV", "AG", "Pty Ltd", "S.r.l.", "Sp. z o.o.", "AB", "Oy", "LLP", "& Co."]


def in_partition(value: str, partition: str) -> bool:
    """True if ``value`` belongs to ``partition`` ("train" ≈ 70 % of values, "test" the rest), by a stable hash."""
    h = int.from_bytes(hashlib.sha256(value.strip().lower().encode()).digest()[:4], "big") % 100
    return h < 70 if partition == "train" else h >= 70


def _latin(s: str) -> bool:
    return bool(s) and all(ch.isascii() or ch.isalpha() and ord(ch) < 0x250 for ch in s)


@lru_cache(maxsize=None)
def _faker_pool(locales: tuple[str, ...], kind: str, partition: str) -> tuple[str, ...]:
    """Every value of one Faker provider list across ``locales`` (Latin script only), restricted to ``partition``."""
    try:
        from faker import Faker
    except ImportError as e:  # pragma: no cover - faker is a dependency
        from ..exceptions import MissingDependencyError

        raise MissingDependencyError("faker", None, "the synthetic PHI corpora of the de-identification tagger") from e
    out: set[str] = set()
    for loc in locales:
        f = Faker(loc)
        f.seed_instance(0)  # the pools (and so every corpus) are the same on every machine
        prov = {type(p).__module__.split(".")[-2] if type(p).__module__.count(".") >= 3 else "": p for p in f.providers}
        person = prov.get("person")
        if kind in ("first", "last") and person is not None:
            if loc in ("ja_JP", "zh_CN", "zh_TW"):
                attr = "first_romanized_names" if kind == "first" else "last_romanized_names"
                vals = list(getattr(person, attr, []) or [])
            else:
                vals = []
                for attr in (["first_names", "first_names_male", "first_names_female"] if kind == "first" else ["last_names"]):
                    v = getattr(person, attr, None)
                    if isinstance(v, dict):
                        vals += list(v)
                    elif v:
                        vals += list(v)
        elif kind == "city":
            addr = prov.get("address")
            listed = getattr(addr, "cities", None) if addr is not None else None
            if isinstance(listed, (list, tuple)) and listed:  # a fixed list: an even, deterministic sample of it
                ordered = sorted(set(listed))
                vals = ordered[:: max(1, len(ordered) // 300)]
            else:  # composed names ("{prefix} {first_name}{suffix}"): sampled from the seeded generator
                vals = [f.city() for _ in range(300)] if addr is not None else []
        elif kind == "street":
            vals = [f.street_name() for _ in range(300)] if prov.get("address") is not None else []
        elif kind == "company":
            vals = [f.company() for _ in range(200)] if prov.get("company") is not None else []
        else:
            raise ValueError(kind)
        out.update(v.strip() for v in vals if isinstance(v, str) and _latin(v.strip()) and 2 <= len(v.strip()) <= 40)
    return tuple(sorted(v for v in out if in_partition(v, partition)))


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
US_STATES = ["AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI",
             "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
             "VT", "VA", "WA", "WV", "WI", "WY"]


class PhiValues:
    """Random PHI values of every Safe Harbor type that occurs in free text. ``partition`` picks the disjoint half of
    the string pools; ``locales`` the Faker locales; ``exclude_locales``: values that also occur in these locales'
    pools are left out (a development set of unseen names that shares none with the test generator's locales)."""

    def __init__(self, rng: random.Random, locales: tuple[str, ...], partition: str, medical_surname_rate: float = 0.06,
                 exclude_locales: tuple[str, ...] = (), variety: bool = False):
        """``variety``: also the layouts added for tagger v4 (surname particles, surname-first and weekday forms,
        more identifier, postcode, address and organisation layouts), each composed from parts; ``False`` draws
        exactly what it drew before (the earlier corpora and development sets stay the same)."""
        self.rng = rng
        self.variety = variety

        def pool(kind: str) -> tuple[str, ...]:
            vals = _faker_pool(locales, kind, partition)
            if not exclude_locales:
                return vals
            drop = {v.lower() for p in ("train", "test") for v in _faker_pool(exclude_locales, kind, p)}
            return tuple(v for v in vals if v.lower() not in drop)

        self.first = pool("first")
        self.last = pool("last")
        self.cities = pool("city")
        self.streets = pool("street")
        self.companies = pool("company")
        if not (self.first and self.last and self.cities):
            raise ValueError(f"empty PHI pools for locales {locales}")
        self.medical = [s for s in MEDICAL_SURNAMES if in_partition(s, partition)]
        self.medical_rate = medical_surname_rate

    # -- people ------------------------------------------------------------------------------------------------
    def first_name(self) -> str:
        return self.rng.choice(self.first)

    def last_name(self) -> str:
        if self.medical and self.rng.random() < self.medical_rate:
            return self.rng.choice(self.medical)
        last = self.rng.choice(self.last)
        if self.rng.random() < 0.06:
            last = f"{last}-{self.rng.choice(self.last)}"
        if self.variety and self.rng.random() < 0.1:
            p = self.rng.choice(PARTICLES)
            last = f"{p}{last}" if p[-1] in "'-" or p in ("Mc", "Fitz") else f"{p} {last}"
        return last

    def person(self) -> tuple[str, str]:
        return self.first_name(), self.last_name()

    def name_forms(self, first: str, last: str) -> list[str]:
        """Ways to write one person's name (a note refers to them several ways)."""
        mid = self.rng.choice(string.ascii_uppercase)
        if self.variety and self.rng.random() < 0.3:  # surname first without a comma, surname with an initial
            return [self.rng.choice([f"{last.upper()} {first}", f"{last} {first[0]}.", f"{last} {first}", f"{last.upper()} {first[0]}.",
                                     f"{first} {last.upper()}", f"{first[0]}.{last}"])]
        return [f"{first} {last}", f"{last}, {first}", f"{first[0]}. {last}", f"{first} {mid}. {last}", last, first, f"{last.upper()}, {first.upper()}",
                f"{first[0]}{last[0]}", f"{last.upper()}", f"{first} {last}".lower(), first.lower()]

    # -- dates and ages ----------------------------------------------------------------------------------------
    def date(self, partial_rate: float = 0.25) -> str:
        r = self.rng
        y, m, d = r.randint(1925, 2026), r.randint(1, 12), r.randint(1, 28)
        mon, mo3 = MONTHS[m - 1], MONTHS[m - 1][:3]
        full = [f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y % 100:02d}", f"{y}-{m:02d}-{d:02d}", f"{mon} {d}, {y}", f"{d} {mon} {y}", f"{d} {mo3} {y}",
                f"{mo3}. {d}, {y}", f"{m:02d}-{d:02d}-{y}", f"{d:02d}-{mo3.upper()}-{y}", f"{d}.{m}.{y}", f"{d:02d}/{m:02d}/{y}", f"{y}{m:02d}{d:02d}",
                f"{mon} {d}{_ordinal(d)}, {y}", f"the {d}{_ordinal(d)} of {mon} {y}", f"{mo3} {d} {y}", f"{m}-{d}-{y % 100:02d}"]
        partial = [f"{m}/{d}", f"{m:02d}/{d:02d}", f"{mon} {y}", f"{mo3} {y}", f"{mon} {d}", f"{d} {mon}", f"{mon} {d}{_ordinal(d)}", f"{m}/{y}",
                   f"{m:02d}/{y}", f"{y}", f"{mo3}-{y % 100:02d}", f"the {d}{_ordinal(d)}", f"{mo3.lower()} {d}"]
        if self.variety and r.random() < 0.3:
            wd = _date(y, m, d).strftime("%A")
            full = [f"{wd[:3]} {d:02d} {mo3} {y}", f"{wd}, {mon} {d}, {y}", f"{wd[:3]}, {d} {mon} {y}", f"{d}-{mo3}-{y % 100:02d}",
                    f"{mo3}-{d:02d}-{y}", f"{d} {mo3}. {y}", f"{y}.{m:02d}.{d:02d}", f"{d:02d}.{m:02d}.{y % 100:02d}", f"{wd[:3]} {m}/{d}/{y}",
                    f"{d}{_ordinal(d)} {mon} {y}", f"{d}/{mo3}/{y}", f"{y}/{m:02d}/{d:02d}"]
            partial = [f"{mon} of {y}", f"{mo3} '{y % 100:02d}", f"{mon} '{y % 100:02d}", f"{wd} the {d}{_ordinal(d)}", f"{mo3}/{y}", f"{mo3.upper()} {y}",
                       f"{m}-{y}", f"{d}.{m}.", f"{mon}, {y}", f"{wd[:3]} {d} {mo3}"]
        return r.choice(partial if r.random() < partial_rate else full)

    def age_over_89(self) -> tuple[str, str, str]:
        """(text before, the age, text after): only the number is PHI ("aged ", "93", "-year-old")."""
        a = str(self.rng.randint(90, 108))
        return self.rng.choice([("", a, ""), ("", a, "-year-old"), ("", a, " year old"), ("", a, " yo"), ("", a, "yo"), ("", a, " y/o"),
                                ("", a, "y"), ("aged ", a, ""), ("age ", a, ""), ("", a, "F"), ("", a, " M")])

    # -- contact ------------------------------------------------------------------------------------------------
    def phone(self) -> str:
        r = self.rng
        a, b, c = r.randint(200, 989), r.randint(200, 999), r.randint(0, 9999)
        forms = [f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}", f"{a} {b} {c:04d}", f"{a}{b}{c:04d}", f"+1 {a} {b} {c:04d}",
                 f"+1-{a}-{b}-{c:04d}", f"1-{a}-{b}-{c:04d}", f"({a}){b}-{c:04d}", f"{b}-{c:04d}",
                 f"+44 {r.randint(20, 79)} {r.randint(1000, 9999)} {r.randint(1000, 9999)}", f"0{r.randint(1000, 9999)} {r.randint(100000, 999999)}",
                 f"+49 {r.randint(30, 89)} {r.randint(1000000, 9999999)}", f"+33 {r.randint(1, 9)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}"]
        p = r.choice(forms)
        if r.random() < 0.08:
            p += r.choice([f" ext. {r.randint(10, 9999)}", f" x{r.randint(10, 999)}", f" ext {r.randint(100, 9999)}"])
        return p

    def email(self, first: str | None = None, last: str | None = None) -> str:
        r = self.rng
        f, la = (first or self.first_name()), (last or self.last_name())
        user = r.choice([f"{f}.{la}", f"{f[0]}{la}", f"{f}{r.randint(1, 99)}", f"{la}.{f[0]}", f"{f}_{la}"]).lower()
        user = "".join(ch for ch in user if ch.isascii() and (ch.isalnum() or ch in "._"))  or "user"
        dom = r.choice(["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com", "protonmail.com", "mail.com",
                        f"{self._slug(self.rng.choice(self.companies) if self.companies else 'clinic')}.{r.choice(['org', 'com', 'net', 'health'])}"])
        return f"{user}@{dom}"

    def url(self) -> str:
        r = self.rng
        host = self._slug(r.choice(self.companies) if self.companies else "portal")
        return r.choice([f"https://www.{host}.com/patient/{r.randint(1000, 99999)}", f"http://{host}.org", f"www.{host}.net/records?id={r.randint(100, 99999)}",
                         f"https://portal.{host}.health/login", f"{host}.com/{self.first_name().lower()}"])

    def ip(self) -> str:
        r = self.rng
        if r.random() < 0.15:
            return ":".join(f"{r.randint(0, 65535):x}" for _ in range(8))
        return ".".join(str(r.randint(1, 254)) for _ in range(4))

    # -- identifiers -----------------------------------------------------------------------------------------------
    def identifier(self, kind: str = "any") -> str:
        """Record, accession, account, plan, licence, device, vehicle numbers: prefix + groups of digits/letters with
        separators, composed at random."""
        r = self.rng
        if kind == "ssn":
            a, b, c = r.randint(100, 899), r.randint(10, 99), r.randint(1000, 9999)
            return r.choice([f"{a}-{b}-{c}", f"{a} {b} {c}", f"{a}{b}{c}", f"xxx-xx-{c}"])
        if kind == "vehicle":
            if r.random() < 0.5:
                return "".join(r.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17))
            return r.choice([f"{_letters(r, 3)}-{r.randint(1000, 9999)}", f"{r.randint(1, 9)}{_letters(r, 3)}{r.randint(100, 999)}", f"{_letters(r, 2)} {r.randint(10, 99)} {_letters(r, 3)}"])
        if self.variety and r.random() < 0.4:
            return self._composed_identifier()
        # letters that belong to the number's format (label words such as "MRN:" are context, written by the caller)
        prefix = r.choice(["", "", "", "", "A", "E", "RAD", "CX", "H", "X", "S", "Q", "K", "M", "P", "T", _letters(r, r.randint(1, 3))])
        n = r.randint(5, 11)
        body = "".join(str(r.randint(0, 9)) for _ in range(n))
        if r.random() < 0.2:
            k = r.randint(1, n - 1)
            body = body[:k] + _letters(r, r.randint(1, 2)) + body[k:]
        if r.random() < 0.3:
            g = r.choice([2, 3, 4])
            sep = r.choice([" ", "-", "."])
            body = sep.join(body[i:i + g] for i in range(0, len(body), g))
        if not prefix:
            return body
        return prefix + r.choice(["", "", "-", "/", "_"]) + body

    def _composed_identifier(self) -> str:
        """2-4 groups of digits (a few letters) with a separator, an optional prefix and check character."""
        r = self.rng
        while True:
            groups = ["".join(r.choice("0123456789" * 6 + "ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(r.randint(1, 6))) for _ in range(r.randint(2, 4))]
            if sum(ch.isdigit() for g in groups for ch in g) >= 5:
                break
        if r.random() < 0.2:
            groups[0] = str(r.randint(1990, 2026))
        body = r.choice([" ", "-", ".", "/", "", "-", " "]).join(groups)
        if r.random() < 0.4:
            pre = r.choice([_letters(r, r.randint(1, 4)), _letters(r, 2).capitalize()])  # part of the number's format, not a label word
            body = pre + r.choice([" ", "-", "/", "", ":", "#", " #"]) + body
        if r.random() < 0.15:
            body += r.choice(["-", "/", ""]) + r.choice(string.ascii_uppercase + string.digits)
        return body

    # -- places and organisations -------------------------------------------------------------------------------------
    def street_address(self) -> str:
        r = self.rng
        st = r.choice(self.streets) if self.streets else f"{self.last_name()} Street"
        num = r.randint(1, 9999)
        if self.variety and r.random() < 0.35:
            n2 = r.randint(1, 60)
            return r.choice([f"{num}{r.choice('ABCD')} {st}", f"Flat {n2}, {num} {st}", f"{st} {num}/{n2}", f"{num}-{num + 2 * n2} {st}", f"#{num} {st}",
                             f"{st}, {num}", f"{st} No. {num}", f"{num} {st}, Floor {n2 % 9 + 1}", f"{st} {num}, {n2} {r.choice(['izq.', 'dcha', 'bus', 'Apt'])}"])
        s = r.choice([f"{num} {st}", f"{st} {num}", f"{num} {st}, Apt {r.randint(1, 40)}{r.choice(['', 'B', 'C'])}", f"Unit {r.randint(1, 30)}, {num} {st}",
                      f"PO Box {r.randint(10, 9999)}"])
        return s

    def city(self) -> str:
        return self.rng.choice(self.cities)

    def zip_code(self) -> str:
        r = self.rng
        if self.variety and r.random() < 0.4:
            L = lambda: r.choice("ABCEGHJKLMNPRSTVWXYZ")  # noqa: E731
            return r.choice([f"{L()}{r.randint(0, 9)}{L()} {r.randint(0, 9)}{L()}{r.randint(0, 9)}", f"{r.randint(1000, 9999)} {L()}{L()}",
                             f"{L()}{r.randint(10, 99)} {L()}{r.randint(0, 9)}{L()}{r.randint(0, 9)}", f"{r.randint(10000, 99999)}-{r.randint(100, 999)}",
                             f"{r.randint(10, 99)}-{r.randint(100, 999)}", f"{r.randint(100, 999)}-{r.randint(1000, 9999)}", f"{r.randint(100, 999)} {r.randint(100, 999)}",
                             f"{L()}{L()}-{r.randint(1000, 9999)}", f"{L()}{r.randint(1, 9)} {r.randint(0, 9)}{L()}{L()}", f"{r.randint(100, 999)} {r.randint(10, 99)}"])
        return r.choice([f"{r.randint(10000, 99999)}", f"{r.randint(10000, 99999)}-{r.randint(1000, 9999)}",
                         f"{_letters(r, 2)}{r.randint(1, 20)} {r.randint(1, 9)}{_letters(r, 2)}", f"{r.randint(1000, 9999)}"])

    def state(self) -> str:
        return self.rng.choice(US_STATES)

    def organisation(self) -> str:
        """A hospital, clinic, practice, pharmacy, school or employer name."""
        r = self.rng
        last, city, first = self.last_name(), self.city(), self.first_name()
        comp = r.choice(self.companies) if self.companies else f"{last} Group"
        if self.variety and r.random() < 0.5:
            sp, un, place = r.choice(ORG_SPECIALTIES), r.choice(ORG_UNITS), r.choice([city, last])
            return r.choice([f"{place} {sp} {un}", f"{last} & {r.choice(['Partners', 'Associates', 'Sons', 'Colleagues', 'Co'])}",
                             f"{last} & {r.choice(['Partners', 'Associates'])} {sp}", f"{last} & {self.last_name()} {sp}", f"{sp} {un} of {city}",
                             f"{first} {last} {un}", f"{comp} {r.choice(ORG_LEGAL)}", f"St {first}'s {un}", f"{city} {un}", f"{last} {sp}",
                             f"{place} {sp}", f"{city.upper()} {sp.upper()} {un.upper()}", f"The {place} {un}", f"{last} {un}"])
        return r.choice([f"{city} General Hospital", f"{last} Family Practice", f"{city} Cardiology Associates", f"St. {first}'s Hospital",
                         f"{city} Medical Center", f"{last} & {self.last_name()} Pediatrics", f"{city} Urgent Care", f"{comp}", f"{comp}",
                         f"{city} Community Health Center", f"{last} Pharmacy", f"{city} Orthopedic Clinic", f"{last} Memorial Hospital",
                         f"{city} Rehabilitation Center", f"{city} Elementary School", f"{first} {last} Nursing Home", f"{city} Dialysis Unit",
                         f"The {last} Clinic", f"{city} Women's Health", f"{last} Dental", f"{city} County Jail", f"{comp} Logistics"])

    @staticmethod
    def _slug(s: str) -> str:
        return "".join(ch for ch in s.lower() if ch.isascii() and ch.isalnum())[:20] or "host"


def _ordinal(d: int) -> str:
    return "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")


def _letters(r: random.Random, n: int) -> str:
    return "".join(r.choice(string.ascii_uppercase) for _ in range(n))


def describe(values: Any) -> dict[str, int]:
    """Pool sizes (for the benchmark's 'how')."""
    return {"first": len(values.first), "last": len(values.last), "cities": len(values.cities), "streets": len(values.streets),
            "companies": len(values.companies)}
