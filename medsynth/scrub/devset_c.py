"""Generator *C*: a second *development* generator of de-identification notes, coded apart from both the training
generator A (:mod:`medsynth.scrub.corpus`) and the test generator B (:mod:`medsynth.scrub.heldout`).

Why it exists: development notes written by generator A — even with held-out names and held-out vocabulary — did not
predict the test figures (a tagger candidate that was better on every A-based development set was worse on B). A
development set has to differ from training in *generator*, as the test set does, so that tuning decisions see the
failures that only appear on text the training generator never writes. C is that set. Tune on C; never on B.

What C has of its own:
- **genres**: hospice, wound care, anaesthesia pre-op, speech-language, dietitian, sleep study, endoscopy, echo,
  incident report, SBAR handoff, occupational-health clearance, medication reconciliation, telehealth transcript,
  audiology — none a genre of A or B; every sentence written here;
- **pools**: Faker locales neither A nor B uses, only the held-out (``"test"``) hash half of every pool, and no value
  that occurs in any pool of B's locales (so C can never carry a test name);
- **values**: its own phone, identifier, date, age and postcode layouts;
- **hard negatives**: its own lists (brand and generic drugs, eponymous signs and scores, organisms, devices and
  dressings, procedure names) — not A's hand lists, not B's.

Nothing here imports from ``corpus.py`` except :class:`Note` and its piece renderer, or from ``heldout.py`` except the names of B's locales
(to exclude their values). Everything is invented; no real person is described.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta

from .corpus import Note, pieces_to_note
from .phi_values import PhiValues

__all__ = ["make_dev_c_notes", "C_LOCALES", "C_GENRES"]

C_LOCALES = ("en_KE", "en_NG", "en_PK", "en_BD", "es_AR", "es_CL", "es_VE", "fr_BE", "fr_CA", "nl_BE", "de_CH", "de_LU", "is_IS",
             "mt_MT", "az_AZ", "bs_BA", "sq_AL", "ga_IE", "tw_GH", "sw", "uz_UZ")

C_DRUGS = ["Keytruda", "Opdivo", "Tagrisso", "Herceptin", "Rituxan", "Dupixent", "Skyrizi", "Trulicity", "Mounjaro", "Wegovy", "Farxiga",
           "Brilinta", "Pradaxa", "Savaysa", "Nexium", "Pepcid", "Benadryl", "Claritin", "Zyrtec", "Singulair", "Advair", "Symbicort", "Spiriva",
           "Trelegy", "Xolair", "Nucala", "Lovenox", "Fragmin", "Arixtra", "Narcan", "Suboxone", "Chantix", "Wellbutrin", "Lexapro", "Zoloft",
           "Prozac", "Cymbalta", "Abilify", "Risperdal", "Zyprexa", "Haldol", "Depakote", "Lamictal", "Tegretol", "Dilantin", "Topamax", "Imitrex",
           "Toradol", "Celebrex", "Medrol", "Decadron", "Cipro", "Levaquin", "Flagyl", "Cleocin", "Keflex", "Rocephin", "Merrem", "Unasyn",
           "Diflucan", "Valtrex", "Tamiflu", "Paxlovid", "enoxaparin", "dexamethasone", "ketorolac", "hydromorphone", "midazolam", "propofol",
           "fentanyl", "rocuronium", "sugammadex", "glycopyrrolate", "labetalol", "hydralazine", "nicardipine", "amiodarone", "diltiazem",
           "digoxin", "spironolactone", "bumetanide", "torsemide", "empagliflozin", "semaglutide", "sitagliptin", "glipizide", "rosuvastatin",
           "ezetimibe", "ticagrelor", "dabigatran", "tranexamic acid", "methadone", "buprenorphine", "haloperidol", "quetiapine", "mirtazapine"]
C_SIGNS = ["Lachman test", "McMurray test", "Phalen sign", "Tinel sign", "Finkelstein test", "Spurling test", "Romberg sign", "Trousseau sign",
           "Chvostek sign", "Brudzinski sign", "Rovsing sign", "Grey Turner sign", "Virchow node", "Osler nodes", "Janeway lesions", "Roth spots",
           "Kussmaul breathing", "Cheyne-Stokes respiration", "Beck triad", "Mallory-Weiss tear", "Zenker diverticulum", "Meckel diverticulum",
           "Hirschsprung disease", "Wilms tumor", "Ewing sarcoma", "Kaposi sarcoma", "Hashimoto thyroiditis", "Takotsubo cardiomyopathy",
           "Brugada pattern", "Ebstein anomaly", "Eisenmenger syndrome", "Dressler syndrome", "Gilbert syndrome", "Fournier gangrene",
           "Bankart lesion", "Hill-Sachs lesion", "Monteggia fracture", "Jones fracture", "Lisfranc injury", "Schatzki ring", "Dupuytren contracture",
           "Osgood-Schlatter disease", "Sever disease", "Barrett's mucosa", "Los Angeles grade B esophagitis", "Forrest IIa ulcer", "Boston bowel prep 8"]
C_SCORES = ["Braden 14", "Morse 45", "Child-Pugh B", "MELD 18", "Hunt and Hess 2", "Karnofsky 70", "ECOG 1", "Epworth 14", "PHQ-9 of 12",
            "GAD-7 of 9", "AUDIT-C 4", "CIWA 8", "COWS 11", "RASS -2", "CAM-ICU negative", "Aldrete 9", "ASA III", "Mallampati III",
            "Cormack-Lehane 2", "STOP-BANG 5", "Revised Cardiac Risk Index 2", "PPS 40%", "MUST score 2", "NRS-2002 of 3", "AHI 31"]
C_BUGS = ["Klebsiella pneumoniae", "Pseudomonas aeruginosa", "Staphylococcus aureus", "Enterococcus faecalis", "Clostridioides difficile",
          "Candida auris", "Escherichia coli", "Proteus mirabilis", "Serratia marcescens", "Acinetobacter baumannii", "Listeria", "Legionella",
          "Helicobacter pylori", "Streptococcus pyogenes", "Haemophilus influenzae", "Moraxella", "Cryptococcus"]
C_DEVICES = ["Impella", "ECMO", "BiPAP", "CPAP", "Optiflow", "PleurX catheter", "Mediport", "Quinton catheter", "Permcath", "Tenckhoff catheter",
             "Dobhoff tube", "PEG tube", "Penrose drain", "Hemovac", "Wound VAC", "Aquacel Ag", "Mepilex Border", "Tegaderm", "Steri-Strips",
             "Dermabond", "Prolene 4-0", "Vicryl", "Monocryl", "LigaSure", "Glidescope", "i-gel", "LMA size 4", "Olympus colonoscope",
             "Philips EPIQ", "ResMed AirSense", "Phonak Audeo", "Oticon More", "Passy-Muir valve", "Shiley 6 trach"]


class _C:
    def __init__(self, r: random.Random):
        from .heldout import TEST_LOCALES

        self.r = r
        self.v = PhiValues(r, C_LOCALES, "test", medical_surname_rate=0.0, exclude_locales=TEST_LOCALES)

    # -- people --------------------------------------------------------------------------------------------------
    def person(self) -> tuple[str, str]:
        return self.r.choice(self.v.first), self.r.choice(self.v.last)

    def full(self, g: str, f: str) -> str:
        return self.r.choice([f"{g} {f}", f"{f.upper()} {g}", f"{f} {g[0]}.", f"{g[0]}. {f}", f"{g} {f}", f"{f}, {g}", f"{g.lower()} {f.lower()}"])

    # -- values with C's own layouts -----------------------------------------------------------------------------------
    def when(self, partial: bool = False) -> str:
        r = self.r
        d = date(1925, 1, 1) + timedelta(days=r.randint(0, 36500))
        if partial:
            return r.choice([d.strftime("%B %Y"), d.strftime("%m/%Y"), f"{d.day} {d.strftime('%b')}", d.strftime("%b '%y"), f"{d.strftime('%B')} of {d.year}"])
        suf = "th" if 10 <= d.day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d.day % 10, "th")
        return r.choice([d.strftime("%d %B %Y"), d.strftime("%Y%m%d"), d.strftime("%d/%m/%y"), d.strftime("%b-%d-%Y"), f"{d.month}.{d.day}.{d.year}",
                         f"the {d.day}{suf} of {d.strftime('%B')} {d.year}", d.strftime("%a %d %b %Y"), d.strftime("%d.%m.%Y")])

    def old_age(self) -> str:
        a = self.r.randint(90, 104)
        words = {90: "ninety", 91: "ninety-one", 92: "ninety-two", 93: "ninety-three", 95: "ninety-five", 98: "ninety-eight"}
        return self.r.choice([str(a), str(a), words.get(a, str(a))])

    def phone(self) -> str:
        r = self.r
        d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
        return r.choice([f"+254 7{d(2)} {d(3)} {d(3)}", f"(0{d(2)}) {d(3)} {d(4)}", f"{d(3)}.{d(3)}.{d(4)}", f"+32 4{d(2)} {d(2)} {d(2)} {d(2)}",
                         f"0{d(3)}-{d(6)}", f"+1 ({d(3)}) {d(3)}-{d(4)} ext. {d(4)}", f"{d(5)} {d(6)}", f"pager {d(1)}-{d(4)}"])

    def ident(self) -> str:
        r = self.r
        d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
        L = lambda k: "".join(r.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(k))  # noqa: E731
        return r.choice([f"K-{d(3)}-{d(4)}", f"{d(3)} {d(3)} {d(4)}", f"{d(8)}", f"{d(4)}-{d(3)}-{L(2)}", f"{L(1)}{d(7)}", f"{L(3)}/{d(5)}/{d(2)}",
                         f"{d(2)}.{d(3)}.{d(3)}", f"{L(2)}{d(6)}{L(1)}"])

    def postcode(self) -> str:
        r = self.r
        return r.choice([f"{r.choice('ABCEGHJKLMNPRSTVXY')}{r.randint(0, 9)}{r.choice('ABCEGHJKLMNPRSTVWXYZ')} {r.randint(0, 9)}{r.choice('ABCEGHJKLMNPRSTVWXYZ')}{r.randint(0, 9)}",
                         f"{r.randint(1000, 9999)} {r.choice('ABCDEFGHJKLMNPRSTVWXZ')}{r.choice('ABCDEFGHJKLMNPRSTVWXZ')}", f"{r.randint(1000, 9999)}",
                         f"{r.choice(['00', '01', '80', '90'])}{r.randint(100, 999)}"])

    def mail(self, g: str, f: str) -> str:
        local = re.sub(r"[^a-z0-9._]", "", f"{g[0]}{f}".lower() if self.r.random() < 0.5 else f"{g}_{f}".lower()) or "patient"
        return f"{local}@{self.r.choice(['safaricom.co.ke', 'videotron.ca', 'bluewin.ch', 'skynet.be', 'ymail.com', 'protonmail.ch', 'eircom.net'])}"

    def org(self) -> str:
        r, v = self.r, self.v
        town = r.choice(v.cities)
        g, f = self.person()
        comp = r.choice(v.companies) if v.companies else f"{f} Ltd"
        return r.choice([f"{town} Hospice", f"{f} Sleep Centre", f"St {g} Infirmary", comp, f"{town} Wound Clinic", f"{f} & Partners Audiology",
                         f"{town} District Hospital", f"{comp}", f"{town} Endoscopy Unit"])

    def neg(self) -> str:
        r = self.r
        k = r.random()
        if k < 0.3:
            return r.choice(C_DRUGS) + r.choice(["", f" {r.choice([2, 4, 6, 12.5, 25, 40, 100, 250])} mg", " PRN", " nightly"])
        if k < 0.55:
            return r.choice(C_SIGNS)
        if k < 0.7:
            return r.choice(C_SCORES)
        if k < 0.82:
            return r.choice(C_BUGS)
        return r.choice(C_DEVICES)


# ⟦slot⟧ kinds: pt (patient, a form of the full name), ptg (given), ptf (family), dr (a clinician, name only), kin (kin
# given name), kinf (kin full), dt (date), pdt (partial date), age (> 89), tel (phone), id (identifier), em (e-mail),
# st (street address), town, pc (postcode), org (organisation), neg (a clinical non-PHI term)
C_GENRES: dict[str, list[str]] = {
    "hospice note": [
        "Hospice admission ⟦dt⟧. ⟦pt⟧, ⟦age⟧ years, admitted from ⟦org⟧ with ⟦neg⟧. PPS 30%. Family: daughter ⟦kinf⟧ (⟦tel⟧). Comfort meds: ⟦neg⟧, ⟦neg⟧.",
        "Spiritual care and symptom review with ⟦ptg⟧; wife ⟦kin⟧ at the bedside. ⟦neg⟧ continued. Plan agreed with ⟦dr⟧ on ⟦pdt⟧.",
    ],
    "wound care": [
        "Wound clinic ⟦dt⟧ - ⟦ptf⟧ sacral pressure injury stage 3, 4.1 x 2.7 cm, ⟦neg⟧ applied, ⟦neg⟧. Swab grew ⟦neg⟧. Seen by ⟦dr⟧.",
        "Dressing change at home (⟦st⟧, ⟦town⟧ ⟦pc⟧): ⟦neg⟧ over ⟦neg⟧. ⟦ptg⟧ tolerated it well. Next review ⟦pdt⟧.",
    ],
    "anaesthesia pre-op": [
        "PRE-ANAESTHETIC EVALUATION\nName: ⟦pt⟧   Hosp no: ⟦id⟧   DOB: ⟦dt⟧\n⟦neg⟧, ⟦neg⟧. Airway: ⟦neg⟧. Plan GA with ⟦neg⟧. Anaesthetist ⟦dr⟧.",
        "Pre-op call to ⟦pt⟧ on ⟦tel⟧: fasting from midnight, hold ⟦neg⟧, bring your ⟦neg⟧. Surgery ⟦dt⟧ at ⟦org⟧.",
    ],
    "speech-language eval": [
        "SLP bedside swallow ⟦dt⟧: ⟦pt⟧ coughing on thin liquids, ⟦neg⟧ in situ. Recommend IDDSI level 5. Discussed with son ⟦kin⟧ and ⟦dr⟧.",
        "speech therapy: ⟦ptg⟧ aphasia improving, naming 14/20. ⟦neg⟧ trialled. next session ⟦pdt⟧ at ⟦org⟧.",
    ],
    "dietitian consult": [
        "Nutrition consult for ⟦pt⟧ (⟦id⟧): ⟦neg⟧, weight 48 kg, lost 6 kg since ⟦pdt⟧. Started oral supplements; ⟦neg⟧ reviewed. Dietitian ⟦dr⟧.",
        "Dietitian phone follow-up ⟦dt⟧ with ⟦ptg⟧'s carer ⟦kinf⟧ at ⟦tel⟧: PEG feeds 1.5 kcal/mL via ⟦neg⟧, tolerating.",
    ],
    "sleep study": [
        "POLYSOMNOGRAPHY REPORT\nPatient: ⟦pt⟧  Study date: ⟦dt⟧  Ref: ⟦id⟧\n⟦neg⟧, ⟦neg⟧. Titrated on ⟦neg⟧ to 11 cmH2O. Interpreting physician: ⟦dr⟧, ⟦org⟧.",
        "Sleep clinic: ⟦ptf⟧ reports ⟦neg⟧; ⟦neg⟧ data reviewed, usage 6.2 h/night since ⟦pdt⟧. Email summary to ⟦em⟧.",
    ],
    "endoscopy report": [
        "ENDOSCOPY ⟦dt⟧ ⟦org⟧\nPatient ⟦pt⟧, MRN ⟦id⟧. Findings: ⟦neg⟧; ⟦neg⟧. Biopsies for ⟦neg⟧. Endoscopist ⟦dr⟧.",
        "Colonoscopy for ⟦pt⟧: ⟦neg⟧, two 4 mm polyps removed with cold snare. Sedation ⟦neg⟧. Recall ⟦pdt⟧.",
    ],
    "echo report": [
        "TRANSTHORACIC ECHO - ⟦pt⟧ - ⟦dt⟧\nLVEF 35%, ⟦neg⟧, moderate MR. Compared with study of ⟦pdt⟧. Reported by ⟦dr⟧ (⟦org⟧).",
        "Echo bubble study for ⟦ptf⟧, age ⟦age⟧: ⟦neg⟧ suspected, ⟦neg⟧ on board. Sonographer ⟦dr⟧, ext ⟦tel⟧.",
    ],
    "incident report": [
        "Incident ⟦id⟧ on ⟦dt⟧ at 02:40: patient ⟦pt⟧ found on the floor beside the bed, ⟦neg⟧. Witness: ⟦kinf⟧. Reported by ⟦dr⟧.",
        "Medication incident: ⟦neg⟧ given twice to ⟦ptg⟧ on ⟦pdt⟧. No harm; ⟦neg⟧ checked. Family (⟦tel⟧) informed.",
    ],
    "sbar handoff": [
        "S: ⟦pt⟧, bed 14, ⟦neg⟧. B: admitted ⟦dt⟧ with ⟦neg⟧ from ⟦org⟧. A: ⟦neg⟧, ⟦neg⟧. R: call ⟦dr⟧ on ⟦tel⟧ if MAP < 65.",
        "handoff - ⟦ptg⟧ (⟦ptf⟧) on ⟦neg⟧, ⟦neg⟧ at 0400. wife ⟦kin⟧ stays overnight.",
    ],
    "occupational health": [
        "Fitness-for-work assessment ⟦dt⟧: ⟦pt⟧, employed by ⟦org⟧ as a forklift driver. ⟦neg⟧. Fit with restrictions until ⟦pdt⟧. ⟦dr⟧.",
        "Occ health: ⟦ptf⟧ needle-stick injury ⟦dt⟧, source negative, ⟦neg⟧ started. Employee no. ⟦id⟧. Contact ⟦em⟧.",
    ],
    "medication reconciliation": [
        "MED REC ⟦dt⟧ - ⟦pt⟧ (⟦id⟧)\nHome: ⟦neg⟧; ⟦neg⟧; ⟦neg⟧. Pharmacy: ⟦org⟧, ⟦st⟧, ⟦town⟧. Verified with ⟦kinf⟧.",
        "Reconciled by ⟦dr⟧: ⟦ptg⟧ stopped ⟦neg⟧ in ⟦pdt⟧, continues ⟦neg⟧. Pharmacy fax ⟦tel⟧.",
    ],
    "telehealth transcript": [
        "[video visit ⟦dt⟧] dr ⟦dr⟧: how are you, ⟦ptg⟧? pt: better since the ⟦neg⟧, but my ⟦neg⟧ is acting up. my brother ⟦kin⟧ lives at ⟦st⟧ if you need to send anything.",
        "[phone] ⟦pt⟧ calling from ⟦town⟧ about ⟦neg⟧; callback ⟦tel⟧; email ⟦em⟧.",
    ],
    "audiology report": [
        "AUDIOLOGY ⟦dt⟧\n⟦pt⟧, DOB ⟦dt⟧, ⟦age⟧ years. Moderate SNHL bilaterally. Fitted ⟦neg⟧. Audiologist ⟦dr⟧, ⟦org⟧, ⟦st⟧ ⟦pc⟧.",
        "Hearing aid review for ⟦ptf⟧: ⟦neg⟧ programme adjusted; next appointment ⟦pdt⟧.",
    ],
}
_LABEL = {"pt": "NAME", "ptg": "NAME", "ptf": "NAME", "dr": "NAME", "kin": "NAME", "kinf": "NAME", "dt": "DATE", "pdt": "DATE", "age": "AGE",
          "tel": "CONTACT", "em": "CONTACT", "id": "ID", "st": "LOCATION", "town": "LOCATION", "pc": "LOCATION", "org": "ORG", "neg": "~NEG"}


def _fill(c: _C, slot: str, pt: tuple[str, str], kin: tuple[str, str]) -> list[tuple[str, str | None]]:
    r = c.r
    g, f = pt
    if slot == "pt":
        return [(c.full(g, f), "NAME")]
    if slot == "ptg":
        return [(g if r.random() < 0.85 else g.lower(), "NAME")]
    if slot == "ptf":
        title = r.choice(["", "", "Mr ", "Mrs ", "Ms "])
        return [(title, None), (f, "NAME")]
    if slot == "dr":
        dg, df = c.person()
        pre, name, post = r.choice([("Dr ", df, ""), ("Dr. ", f"{dg} {df}", ""), ("", f"{dg} {df}", ", MD"), ("", df, ""), ("", f"{dg[0]}. {df}", " (RN)"),
                                    ("Nurse ", dg, "")])
        return [(pre, None), (name, "NAME"), (post, None)]
    if slot == "kin":
        return [(kin[0], "NAME")]
    if slot == "kinf":
        return [(f"{kin[0]} {kin[1]}", "NAME")]
    if slot == "dt":
        w = c.when()
        return [("the ", None), (w[4:], "DATE")] if w.startswith("the ") else [(w, "DATE")]
    if slot == "pdt":
        return [(c.when(partial=True), "DATE")]
    if slot == "age":
        return [(c.old_age(), "AGE")]
    if slot == "tel":
        t = c.phone()
        return [("pager ", None), (t[6:], "CONTACT")] if t.startswith("pager ") else [(t, "CONTACT")]
    if slot == "em":
        return [(c.mail(g, f), "CONTACT")]
    if slot == "id":
        return [(c.ident(), "ID")]
    if slot == "st":
        return [(f"{r.randint(1, 480)} {r.choice(c.v.streets)}" if c.v.streets else f"{r.randint(1, 480)} {f} Road", "LOCATION")]
    if slot == "town":
        return [(r.choice(c.v.cities), "LOCATION")]
    if slot == "pc":
        return [(c.postcode(), "LOCATION")]
    if slot == "org":
        return [(c.org(), "ORG")]
    if slot == "neg":
        return [(c.neg(), "~NEG")]
    raise KeyError(slot)


def _note(c: _C, genre: str, template: str, nid: str) -> Note:
    pt, kin = c.person(), c.person()
    pieces: list[tuple[str, str | None]] = []
    for i, part in enumerate(re.split(r"⟦(\w+)⟧", template)):
        pieces += _fill(c, part, pt, kin) if i % 2 else [(part, None)]
    return pieces_to_note(pieces, nid, genre)


def make_dev_c_notes(n: int, seed: int = 11) -> list[Note]:
    """``n`` labelled development notes of generator C (genres in turn, templates drawn)."""
    c = _C(random.Random(seed))
    genres = sorted(C_GENRES)
    return [_note(c, genres[i % len(genres)], c.r.choice(C_GENRES[genres[i % len(genres)]]), f"C{seed}-{i}") for i in range(n)]
