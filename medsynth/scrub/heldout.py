"""Generator *B*: the de-identification test notes, coded separately from the training generator
(:mod:`medsynth.scrub.corpus`) so that the tagger's figures measure generalisation, not memory.

What differs from generator A, on purpose:
- **pools**: people, streets, cities and companies from Faker locales A never uses, and only from the ``"test"``
  hash partition of every pool (a name of this set cannot occur in A's training notes, whatever its locale);
- **values**: phones, identifiers, dates, plates and account numbers come from Faker's own providers and
  ``strftime`` layouts, not from A's composition code;
- **genres and wording**: home-health visits, physiotherapy sessions, patient discharge instructions, prior-
  authorisation letters, death summaries, psychiatric intakes, dental notes, clinician e-mail threads, ambulance
  run sheets, immunisation records, work/school excuse notes, genetic-counselling pedigrees, obstetric notes,
  chaplaincy notes — none of them a genre of A, every sentence written here.

Nothing here may import from ``corpus.py`` except the :class:`Note` record type and its piece renderer. Tune nothing on these notes.
Everything is invented; no real person is described.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta

from .corpus import Note, pieces_to_note
from .phi_values import in_partition

__all__ = ["make_test_notes", "TEST_LOCALES", "B_GENRES"]

TEST_LOCALES = ("en_AU", "en_NZ", "en_IE", "fi_FI", "da_DK", "hu_HU", "ro_RO", "vi_VN", "id_ID", "fil_PH", "sk_SK", "hr_HR", "sl_SI", "lt_LT",
                "no_NO", "de_AT", "fr_CH", "es_CO", "pt_PT", "it_CH", "en_PH", "et_EE", "lv_LV", "tl_PH")


class _B:
    def __init__(self, rng: random.Random):
        from faker import Faker

        self.r = rng
        locs = []
        for loc in TEST_LOCALES:
            try:
                locs.append(Faker(loc))
            except AttributeError:
                continue
        self.fakers = locs
        for f in self.fakers:
            f.seed_instance(rng.randint(0, 2**31))
        self.us = Faker("en_US")
        self.us.seed_instance(rng.randint(0, 2**31))

    def _f(self):  # noqa: ANN202
        return self.r.choice(self.fakers)

    def _call(self, method: str) -> str:
        """``method`` of a random locale that has it (not every locale has every provider)."""
        for _ in range(20):
            f = self._f()
            if hasattr(f, method):
                try:
                    return str(getattr(f, method)())
                except (AttributeError, ValueError):
                    continue
        return str(getattr(self.us, method)())

    def _pick(self, fn, tries: int = 60) -> str:  # noqa: ANN001
        for _ in range(tries):
            v = str(fn()).strip()
            if v and all(ch.isascii() or (ch.isalpha() and ord(ch) < 0x250) for ch in v) and in_partition(v, "test"):
                return v
        return v

    def given(self) -> str:
        return self._pick(lambda: self._call('first_name'))

    def family(self) -> str:
        return self._pick(lambda: self._call('last_name'))

    def town(self) -> str:
        return self._pick(lambda: self._call('city'))

    def road(self) -> str:
        return self._pick(lambda: self._call('street_address'))

    def firm(self) -> str:
        return self._pick(lambda: self._call('company'))

    def when(self, partial: bool = False) -> str:
        d = date(1930, 1, 1) + timedelta(days=self.r.randint(0, 35000))
        if partial:
            fmt = self.r.choice(["%b %Y", "%B '%y", "%d/%m", "%m/%y", "%Y", "early %B", "%b %d"])
        else:
            fmt = self.r.choice(["%d/%m/%Y", "%d.%m.%Y", "%A, %d %B %Y", "%Y/%m/%d", "%b %d, %Y", "%d-%b-%y", "%m/%d/%Y", "%B %-d %Y", "%-d/%-m/%y",
                                 "%d %b '%y", "%Y.%m.%d"])
        return d.strftime(fmt)

    def phone(self) -> str:
        return self.r.choice([self._call("phone_number"), self.us.phone_number(), self._call("phone_number")])

    def mobile(self) -> str:
        n = "".join(str(self.r.randint(0, 9)) for _ in range(8))
        return self.r.choice([f"04{n[:2]} {n[2:5]} {n[5:]}", f"07{n[:3]} {n[3:]}", f"+61 4{n[:2]} {n[2:5]} {n[5:]}", f"0{n[:3]}-{n[3:]}"])

    def number(self, kind: str) -> str:
        r, f = self.r, self.us
        if kind == "plate":
            return self._call("license_plate")
        if kind == "iban":
            return self._call("iban")
        if kind == "ssn":
            return f.ssn()
        if kind == "medicare":
            n = "".join(str(r.randint(0, 9)) for _ in range(10))
            return f"{n[:4]} {n[4:9]} {n[9]}"
        if kind == "nhi":
            return "".join(r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(3)) + "".join(str(r.randint(0, 9)) for _ in range(4))
        if kind == "ean":
            return f.ean13()
        n = r.randint(6, 10)
        return r.choice(["", "UR", "PA-", "A"]) + "".join(str(r.randint(0, 9)) for _ in range(n))  # letters attached: part of the number

    def number_label(self) -> str:
        """A label word written before a number: context, not PHI (the annotation guideline tags the identifier only)."""
        return self.r.choice(["", "", "URN ", "Case ", "ref ", "Claim #", "Auth ", "Ref. no. "])

    def mail(self, given: str, family: str) -> str:
        local = re.sub(r"[^a-z0-9.]", "", f"{given}.{family}".lower()) or "pt"
        return f"{local}{self.r.choice(['', str(self.r.randint(1, 99))])}@{self.r.choice(['bigpond.com', 'xtra.co.nz', 'eircom.net', 'posteo.de', 'mail.ru', 'gmx.at', 'yandex.com', 'outlook.co.nz'])}"


# a template is a string with ⟨kind⟩ slots: ⟨P⟩ patient full name, ⟨Pg⟩ given, ⟨Pf⟩ family, ⟨C⟩ clinician,
# ⟨K⟩ kin given name, ⟨Kf⟩ kin full name, ⟨D⟩ date, ⟨d⟩ partial date, ⟨A⟩ age > 89, ⟨T⟩ phone, ⟨M⟩ mobile,
# ⟨E⟩ e-mail, ⟨N:kind⟩ number, ⟨R⟩ street address, ⟨W⟩ town, ⟨O⟩ organisation, ⟨X⟩ a non-PHI clinical phrase
B_GENRES: dict[str, list[str]] = {
    "home health visit": [
        "Home visit ⟨D⟩. Client ⟨P⟩ seen at home, ⟨R⟩, ⟨W⟩. ⟨X⟩. Kin ⟨Kf⟩ present throughout. ⟨X⟩. Next visit ⟨d⟩. Contact ⟨M⟩.",
        "HH RN visit - ⟨Pg⟩ was sitting up in the recliner. ⟨X⟩. Wound dressing changed. Her husband ⟨K⟩ asked about ⟨X⟩. Visit by ⟨C⟩.",
    ],
    "physiotherapy": [
        "Physiotherapy session #4 (⟨D⟩). ⟨P⟩ walked 40 m with a frame. ⟨X⟩. Goals reviewed with ⟨Pg⟩ and ⟨K⟩. Treating physio: ⟨C⟩.",
        "PT: ⟨Pf⟩ rpt knee stiffness since ⟨d⟩, ROM 10-95. ⟨X⟩. HEP given. Review ⟨d⟩ at ⟨O⟩.",
    ],
    "discharge instructions": [
        "Dear ⟨Pg⟩, you were looked after on Ward 6 from ⟨D⟩ to ⟨D⟩. Please take ⟨X⟩. If you feel worse ring ⟨T⟩ or see your GP, ⟨C⟩, at ⟨O⟩.",
        "Going home advice for ⟨P⟩ (UR ⟨N:urn⟩). Keep the wound dry until ⟨d⟩. Your next appointment: ⟨D⟩ with ⟨C⟩. Questions: ⟨E⟩.",
    ],
    "prior authorisation letter": [
        "⟨O⟩\nClaims Department\n⟨R⟩\n⟨W⟩\n\n⟨D⟩\n\nRE: ⟨P⟩, member ⟨N:medicare⟩, claim ⟨N:x⟩\nWe request approval of ⟨X⟩ for this member, born ⟨D⟩. Prior therapy failed. ⟨X⟩.\nSincerely, ⟨C⟩, phone ⟨T⟩",
    ],
    "death summary": [
        "DEATH SUMMARY. ⟨P⟩, aged ⟨A⟩, died peacefully on ⟨D⟩ at ⟨O⟩. ⟨X⟩. Family (⟨Kf⟩, ⟨Kf⟩) were present. Certified by ⟨C⟩. Coroner not notified.",
        "Patient deceased ⟨D⟩ 03:12. Cause: ⟨X⟩. Next of kin ⟨Kf⟩ informed by phone on ⟨M⟩. Body released to ⟨O⟩.",
    ],
    "psychiatric intake": [
        "Psychiatric intake. ⟨Pg⟩ ⟨Pf⟩ is a ⟨A⟩ widow referred by ⟨C⟩. Grew up in ⟨W⟩; worked for ⟨O⟩ until ⟨d⟩. Lives alone at ⟨R⟩. ⟨X⟩. Collateral from her niece ⟨K⟩.",
        "MH assessment: client (⟨Pf⟩) reports low mood since ⟨d⟩. ⟨X⟩. Safety plan shared with partner ⟨K⟩ (⟨M⟩).",
    ],
    "dental note": [
        "Dental recall ⟨D⟩. ⟨P⟩. ⟨X⟩. Scale and polish. Next recall ⟨d⟩. Seen by ⟨C⟩, ⟨O⟩.",
    ],
    "email thread": [
        "From: ⟨C⟩ <⟨E⟩>\nSent: ⟨D⟩\nSubject: ⟨Pf⟩ bloods\n\nHi, can you look at ⟨Pg⟩'s results from ⟨d⟩? ⟨X⟩. Thanks\n\n> On ⟨D⟩, ⟨C⟩ wrote:\n> ⟨X⟩.",
    ],
    "ambulance run sheet": [
        "AMB CASE ⟨N:x⟩ ⟨D⟩. Pickup ⟨R⟩, ⟨W⟩. Pt ⟨P⟩ (⟨A⟩ y.o.) found on floor by neighbour ⟨Kf⟩. ⟨X⟩. Vehicle ⟨N:plate⟩. Crew: ⟨C⟩.",
    ],
    "immunisation record": [
        "IMMUNISATION RECORD - ⟨P⟩, born ⟨D⟩, NHI ⟨N:nhi⟩.\n⟨D⟩ influenza (lot ⟨N:ean⟩)\n⟨D⟩ tetanus booster\nGiven by ⟨C⟩ at ⟨O⟩.",
    ],
    "work excuse note": [
        "To whom it may concern: ⟨P⟩ was unable to attend work at ⟨O⟩ from ⟨D⟩ to ⟨D⟩ for medical reasons. Regards, ⟨C⟩ ⟨T⟩",
        "school note - please excuse ⟨Pg⟩ ⟨Pf⟩ from sport until ⟨d⟩. mum ⟨K⟩ can be reached on ⟨M⟩.",
    ],
    "genetic counselling": [
        "Genetic counselling ⟨D⟩. Proband ⟨P⟩. Mother ⟨Kf⟩ (d. ⟨d⟩, breast ca at 44); maternal aunt ⟨Kf⟩; brother ⟨K⟩ unaffected. ⟨X⟩. Testing via ⟨O⟩.",
    ],
    "obstetric note": [
        "ANC visit, 32/40. ⟨P⟩ G2P1. EDD ⟨D⟩. ⟨X⟩. Partner ⟨K⟩ attended. Booked at ⟨O⟩. Midwife ⟨C⟩.",
    ],
    "chaplaincy note": [
        "Pastoral care: visited ⟨Pg⟩ at her request. Prayed with ⟨Pg⟩ and her son ⟨K⟩. Parish: St Brigid's, ⟨W⟩. ⟨X⟩.",
    ],
    "banking consent": [
        "Billing: ⟨P⟩ consents to direct debit from account ⟨N:iban⟩. Statement to ⟨R⟩, ⟨W⟩, or ⟨E⟩. SSN on file ⟨N:ssn⟩.",
    ],
}
CLINICAL_B = ["paracetamol 1 g QID", "Parkinson's disease", "left Colles fracture", "HbA1c 7.9%", "BP 142/88 mmHg", "Bell's palsy resolved",
              "oxycodone 5 mg at 2200h", "Glasgow 14", "sats 94% RA", "Crohn's flare", "eGFR 48", "Graves' ophthalmopathy", "Still's disease",
              "Murphy's sign negative", "MMSE 24/30", "PHQ-9 of 17", "Wilson's disease screen", "Baker's cyst", "Addison's crisis excluded",
              "enoxaparin 40 mg SC daily", "INR 2.4", "troponin 18 ng/L", "Apgar 9 at 5 min", "walks 10 m", "pain 6/10", "Hodgkin lymphoma in 1998"]
_SLOT = re.compile(r"⟨(\w+)(?::(\w+))?⟩")


def _note(b: _B, genre: str, template: str, nid: str) -> Note:
    r = b.r
    given, family = b.given(), b.family()
    clinicians = [f"{r.choice(['Dr ', 'Dr. ', '', 'Prof. ', 'Nurse '])}|{b.given()} {b.family()}" for _ in range(2)]
    kin = [b.given() for _ in range(3)]
    pieces: list[tuple[str, str | None]] = []
    pos = 0
    for m in _SLOT.finditer(template):
        pieces.append((template[pos:m.start()], None))
        pos = m.end()
        k, arg = m.group(1), m.group(2)
        if k == "P":
            pieces.append((r.choice([f"{given} {family}", f"{family}, {given}", f"{family.upper()} {given}", f"{given[0]}. {family}", f"{given} {family}".lower()]), "NAME"))
        elif k == "Pg":
            pieces.append((given, "NAME"))
        elif k == "Pf":
            pieces.append((family, "NAME"))
        elif k == "C":
            title, name = r.choice(clinicians).split("|")
            pieces += [(title, None), (name, "NAME")]
        elif k == "K":
            pieces.append((r.choice(kin), "NAME"))
        elif k == "Kf":
            pieces.append((f"{r.choice(kin)} {r.choice([family, b.family()])}", "NAME"))
        elif k in ("D", "d"):
            pieces.append((b.when(partial=k == "d"), "DATE"))
        elif k == "A":
            pieces.append((str(r.randint(90, 104)), "AGE"))
        elif k == "T":
            pieces.append((b.phone(), "CONTACT"))
        elif k == "M":
            pieces.append((b.mobile(), "CONTACT"))
        elif k == "E":
            pieces.append((b.mail(given, family), "CONTACT"))
        elif k == "N":
            label = b.number_label() if (arg or "x") == "x" else ""
            pieces += [(label, None), (b.number(arg or "x"), "ID")]
        elif k == "R":
            pieces.append((b.road(), "LOCATION"))
        elif k == "W":
            pieces.append((b.town(), "LOCATION"))
        elif k == "O":
            pieces.append((b.firm(), "ORG"))
        elif k == "X":
            pieces.append((r.choice(CLINICAL_B), "~NEG"))
    pieces.append((template[pos:], None))
    if r.random() < 0.15:  # informal: all lower case
        pieces = [(t.lower(), lab) for t, lab in pieces]
    return pieces_to_note(pieces, nid, genre)


def make_test_notes(n: int, seed: int = 7) -> list[Note]:
    """``n`` labelled test notes of generator B (genres in turn)."""
    b = _B(random.Random(seed))
    genres = sorted(B_GENRES)
    out = []
    for i in range(n):
        g = genres[i % len(genres)]
        out.append(_note(b, g, b.r.choice(B_GENRES[g]), f"B{seed}-{i}"))
    return out
