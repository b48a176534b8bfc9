"""The training corpus of the de-identification tagger: synthetic clinical notes with exact PHI offsets.

Generator *A* (this module) writes notes of many genres — discharge summaries, progress, nursing, ED triage, consult,
operative and telephone notes, radiology and pathology reports, referral and clinic letters, lab and pharmacy
messages, patients' portal and text messages, social-work notes — from section templates with typed slots. PHI
values come from :mod:`medsynth.scrub.phi_values` (Faker's locales, the ``"train"`` partition; identifiers, phones
and dates composed from parts). Notes refer to one patient several ways (full name, surname, first name, initials,
``LAST, FIRST``), mix in family members, clinicians, organisations, and clinical text full of hard negatives
(eponyms, drugs, labs, scores, vitals, times, durations, doses, surnames that are medical words used as such).
Layout and noise: header blocks, capitals, informal lower case, line wrapping, OCR confusions, doubled spaces.

Real clinical language as negatives: when the IU chest X-ray reports are installed (``torchxrayvision``'s
``NLMCXR_reports.tgz``, read at run time, never copied), a share of the clinical sentences and problem terms are
real report sentences (without their ``XXXX`` de-identification placeholders) and MeSH problem terms of the
reports' ``train`` split (the development notes use the ``validation`` split). They teach the tagger that a
capitalised medical word it has never seen is not a name. The trained artifact records how many were used.

The tagger's *test* notes come from a separately coded generator with its own genres, templates and the ``"test"``
partition of every pool (:mod:`medsynth.scrub.heldout`); tuning uses a development set of this generator with
another seed only.

Everything here is invented; no real person is described.

Why over 500 lines: most of it is data (genre templates, hard-negative lists) of one generator; the code is
``_Writer`` and the noise model.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from .phi_values import PhiValues
from .vocab import cased, diagnosis_terms, drug_terms

__all__ = ["Note", "TAG_LABELS", "make_training_notes", "TRAIN_LOCALES", "render", "pieces_to_note", "real_clinical_text"]

#: the tagger's labels (coarse Safe Harbor groups); medsynth's finer labels come from the rules on overlap
TAG_LABELS = ["NAME", "DATE", "AGE", "CONTACT", "ID", "LOCATION", "ORG"]
TRAIN_LOCALES = ("en_US", "en_GB", "en_CA", "en_IN", "de_DE", "fr_FR", "es_ES", "es_MX", "it_IT", "pl_PL", "pt_BR", "nl_NL", "sv_SE", "zh_CN",
                 "ja_JP", "ko_KR", "yo_NG", "zu_ZA", "tr_TR", "cs_CZ")


@dataclass
class Note:
    id: str
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # PHI (start, end, TAG_LABEL)
    genre: str = ""
    negatives: list[tuple[int, int, str]] = field(default_factory=list)  # clinical non-PHI expressions (hard negatives)


Seg = tuple[str, str | None]  # (text, PHI label or None; "~NEG" marks a hard negative)

DRUGS = ["metoprolol", "lisinopril", "Lasix", "furosemide", "heparin", "Coumadin", "warfarin", "Eliquis", "apixaban", "Zosyn", "vancomycin",
         "ceftriaxone", "Augmentin", "amoxicillin", "insulin glargine", "Lantus", "metformin", "atorvastatin", "Lipitor", "prednisone",
         "albuterol", "Ventolin", "Tylenol", "acetaminophen", "oxycodone", "Norco", "Dilaudid", "Zofran", "ondansetron", "pantoprazole",
         "Protonix", "Keppra", "levetiracetam", "Seroquel", "Ativan", "lorazepam", "aspirin", "Plavix", "clopidogrel", "Xarelto", "Humira",
         "Ozempic", "Jardiance", "Entresto", "Synthroid", "levothyroxine", "Flomax", "tamsulosin", "gabapentin", "Neurontin", "Bactrim"]
LABS = ["CBC", "BMP", "CMP", "troponin", "BNP", "lactate", "INR", "PTT", "HbA1c", "TSH", "lipase", "CRP", "ESR", "procalcitonin", "ferritin",
        "creatinine", "potassium", "sodium", "hemoglobin", "WBC", "platelets", "D-dimer", "ammonia", "CK", "magnesium"]
EPONYM_PHRASES = ["Foley catheter", "Bell's palsy", "Parkinson disease", "Hodgkin lymphoma", "Graves disease", "Crohn's disease",
                  "Addison's disease", "Cushing syndrome", "Wilson disease", "Baker's cyst", "Glasgow Coma Scale 15", "Swan-Ganz catheter",
                  "Whipple procedure", "Babinski sign", "Murphy's sign", "Homan's sign", "Kernig sign", "Still's disease", "Marfan syndrome",
                  "Raynaud phenomenon", "Horner syndrome", "Paget disease", "Sjogren syndrome", "Tourette syndrome", "Down syndrome",
                  "Kawasaki disease", "Turner syndrome", "tetralogy of Fallot", "Guillain-Barre syndrome", "Barrett esophagus",
                  "Ludwig angina", "Colles fracture", "Wolff-Parkinson-White", "Charcot foot", "Cullen sign", "Apgar 8/9", "Gleason 3+4",
                  "Mallampati II", "Wells score 4", "CHA2DS2-VASc 3", "NIHSS 2", "Killip class I", "NYHA class III", "Lyme disease",
                  "Doppler ultrasound", "Holter monitor", "Pap smear", "Heimlich maneuver", "Trendelenburg position", "Alzheimer dementia"]
FINDINGS = ["no acute distress", "lungs clear to auscultation bilaterally", "regular rate and rhythm", "mild bibasilar crackles",
            "2+ pitting edema to the knees", "abdomen soft, nontender", "small left pleural effusion", "no focal neurologic deficit",
            "stable cardiomegaly", "wound clean, dry and intact", "tolerating a regular diet", "ambulating with a walker",
            "urine output adequate", "afebrile overnight", "pain controlled", "no pneumothorax", "right lower lobe consolidation",
            "mild degenerative changes of the thoracic spine", "sinus tachycardia", "new onset atrial fibrillation", "elevated lactate",
            "hyponatremia improving", "acute kidney injury resolving", "cellulitis of the left lower extremity"]


def _time(r: random.Random) -> str:
    h, m = r.randint(0, 23), r.choice([0, 5, 10, 15, 20, 30, 40, 45, 50])
    return r.choice([f"{h:02d}{m:02d}", f"{h:02d}:{m:02d}", f"{(h % 12) or 12}:{m:02d} {'am' if h < 12 else 'pm'}", f"{h:02d}{m:02d}h",
                     f"{(h % 12) or 12}{'a' if h < 12 else 'p'}"])


ID_WORDS = {"mrn": ["MRN", "MR", "Med Rec", "Hospital no", "UR"], "id": ["ID", "Acc", "Accession", "Case", "Ref", "Specimen", "Order"],
            "acc": ["Acct", "Account", "ACC", "Billing"], "plan": ["Member ID", "Policy", "INS", "Plan", "Group"],
            "lic": ["DEA", "NPI", "Lic", "License", "DL"], "dev": ["SN", "Serial", "Lot", "LOT", "Model", "Device ID"]}
SCORES = ["MMSE 26/30", "MoCA 21/30", "GCS 14/15", "strength 4/5", "2/6 systolic murmur", "vision 20/40", "RR 22", "T 38.4C", "Temp 99.1F",
          "Hgb 9.8", "K 3.2", "EF 35%", "pain 7/10", "O2 sat 93%", "Wt 82.3 kg", "BMI 31.2", "ASA II", "Mallampati 2", "grade 2/4", "FEV1 1.9 L",
          "PSA 4.1", "A1c 8.2%", "QTc 468", "CD4 210", "Braden 14", "Morse 45", "APGAR 8/9", "1+ reflexes", "3/4 bottles", "24/7 supervision"]
DEPARTMENTS = ["Cardiology", "cardiology clinic", "Neurology", "the ICU", "Radiology", "Oncology", "Nephrology", "the ED", "Endocrinology",
               "Physical Therapy", "Social Work", "Pharmacy", "General Surgery", "the cath lab", "Labor and Delivery", "Infectious Disease",
               "Palliative Care", "Pulmonology", "GI", "Dermatology", "Wound Care", "Home Health", "Case Management"]
LABEL_WORDS = ["IP address", "VIN", "Fax", "Portal link", "Driver's license", "License #", "Serial number", "Plate", "Beeper", "Pager",
               "Contact number", "Next of kin", "Emergency contact", "Home phone", "Cell", "Work phone", "Website", "E-mail", "Policy #"]
DEVICES = ["Jackson-Pratt drain", "Hickman line", "Kerley B lines", "Swan-Ganz catheter", "Foley catheter", "PICC line", "Port-a-Cath",
           "Pleur-evac", "Blakemore tube", "Miller blade", "Mac 3 blade", "Yankauer suction", "Ambu bag", "Bair Hugger", "Doppler probe"]

# more hard negatives of the ``variety`` corpus (tagger v4): organisms, devices and brands, named scores and eponymous
# signs, syndromes and fractures. None of them is in generator C's lists (the development set; a test checks it).
ORGANISMS = ["Enterobacter cloacae", "Citrobacter freundii",
             "Stenotrophomonas maltophilia", "Bacteroides fragilis", "Mycoplasma pneumoniae", "Chlamydia trachomatis", "Neisseria gonorrhoeae",
             "Treponema pallidum", "Borrelia burgdorferi", "Aspergillus fumigatus", "Pneumocystis jirovecii", "Mycobacterium tuberculosis",
             "Salmonella", "Shigella", "Campylobacter", "Bordetella pertussis", "Nocardia", "Actinomyces", "Histoplasma", "Blastomyces",
             "Coccidioides", "Toxoplasma gondii", "Giardia", "Cytomegalovirus", "Norovirus", "Rotavirus", "Mucor", "Rhizopus",
             "Burkholderia cepacia", "Morganella morganii", "Providencia", "Fusobacterium", "Prevotella", "Eikenella", "Kingella kingae",
             "Trichomonas", "Strongyloides", "Enterobius", "Vibrio",
             "Yersinia", "Brucella", "Francisella", "Rickettsia", "Ehrlichia", "Bartonella henselae", "Pasteurella multocida"]
DEVICE_BRANDS = ["Medtronic Micra", "Watchman device", "MitraClip", "Dexcom G7", "FreeStyle Libre", "Omnipod", "Alaris pump", "Arctic Sun",
                 "PowerPICC", "Groshong catheter", "Broviac catheter", "Ommaya reservoir", "Minerva collar", "Aspen collar", "Philadelphia collar",
                 "Thomas splint", "Sager splint", "Ilizarov frame", "Pavlik harness", "Milwaukee brace", "Zimmer frame", "Hoyer lift",
                 "Roho cushion", "Allevyn", "Kaltostat", "Silvercel", "Duoderm", "Xeroform", "Coban wrap", "Unna boot", "Montgomery straps",
                 "Salem sump", "pigtail catheter", "Malecot catheter", "Coude catheter", "Ethibond", "PDS II", "Stratafix", "Siemens Acuson",
                 "GE Vivid", "Medtronic LINQ", "Zoll LifeVest", "Inspire implant", "Cochlear Nucleus", "Baha implant", "Airvo", "Vapotherm",
                 "Trilogy ventilator", "Hamilton C6", "LUCAS device", "AutoPulse", "Sonosite", "Butterfly iQ", "Accu-Chek", "Provox valve"]
NAMED_SCORES = ["Norton 16", "Waterlow 12", "Wexner 8", "Oswestry 34%", "Barthel 65", "modified Rankin 2", "Ranson 3", "Glasgow-Blatchford 6",
                "Rockall 4", "Alvarado 7", "Centor 3", "Geneva score 4", "PESI class II", "HEART score 3", "TIMI 2", "GRACE 140", "Bishop score 8",
                "Apfel 3", "Caprini 5", "Padua 4", "Tanner stage 3", "Fitzpatrick type II", "Clark level III", "Breslow 1.2 mm", "Bosniak IIF",
                "Fazekas 2", "Spetzler-Martin 3", "Fisher grade 3", "Sokolow-Lyon 38 mm", "Berg 41", "Tinetti 18", "Katz ADL 4", "EDSS 3.5",
                "Hoehn and Yahr 2", "Lund-Browder 12%", "Parkland 8 L", "Ramsay 3", "Richmond -1", "Duke score 5", "Wagner grade 2",
                "Salter-Harris II", "Gustilo IIIa", "Neer type 3", "Schatzker IV", "Garden III", "Vancouver B2", "Kellgren-Lawrence 3"]
EPONYM_MORE = ["Battle sign", "Kehr sign", "Blumberg sign", "Levine sign", "Hoffmann sign", "Gowers sign", "Ortolani test", "Barlow test",
               "Thompson test", "Hawkins test", "Neer test", "Apley test", "Allen test", "Schober test", "Patrick test", "Adson test",
               "Dix-Hallpike maneuver", "Epley maneuver", "Sellick maneuver", "Weber test", "Rinne test", "Schirmer test", "Nikolsky sign",
               "Auspitz sign", "Darier sign", "Koebner phenomenon", "Uhthoff phenomenon", "Argyll Robertson pupil", "Marcus Gunn pupil",
               "Holmes-Adie syndrome", "Pott disease", "Boerhaave syndrome", "Budd-Chiari syndrome", "Conn syndrome", "Sheehan syndrome",
               "Plummer-Vinson syndrome", "Peutz-Jeghers syndrome", "Lynch syndrome", "Gardner syndrome", "Alport syndrome",
               "Goodpasture syndrome", "Stevens-Johnson syndrome", "Kallmann syndrome", "Prader-Willi syndrome", "Ehlers-Danlos syndrome",
               "Noonan syndrome", "Waldenstrom macroglobulinemia", "Castleman disease", "Buerger disease", "Perthes disease",
               "Scheuermann kyphosis", "Smith fracture", "Barton fracture", "Galeazzi fracture", "Maisonneuve fracture", "Chance fracture",
               "Bennett fracture", "Segond fracture", "Weber B fracture", "Hartmann procedure", "Nissen fundoplication", "Roux-en-Y bypass",
               "Billroth II", "Ross procedure", "Fontan circulation", "Glenn shunt", "Blalock-Taussig shunt", "Kocher incision",
               "Pfannenstiel incision", "Seldinger technique", "Ziehl-Neelsen stain", "Wright stain", "Giemsa stain", "Lugol iodine",
               "Biot breathing", "Korotkoff sounds", "Austin Flint murmur", "Graham Steell murmur", "Carey Coombs murmur"]


def _neg(r: random.Random, drug: Callable[[], str] | None = None, variety: bool = False) -> str:
    """A clinical expression that looks like PHI to a generic recogniser but is not (``drug``: draws a drug name;
    ``variety``: also organisms, device brands, named scores and more eponyms)."""
    drug = drug or (lambda: r.choice(DRUGS))
    if variety and r.random() < 0.3:
        k = r.randrange(4)
        if k == 0:
            return r.choice(ORGANISMS) + r.choice(["", "", " bacteremia", " on culture", " species", " isolated"])
        if k == 1:
            return r.choice(DEVICE_BRANDS)
        if k == 2:
            return r.choice(NAMED_SCORES)
        return r.choice(EPONYM_MORE)
    k = r.random()
    if k < 0.25:
        return r.choice(SCORES + DEPARTMENTS + DEVICES)
    k = r.random()
    if k < 0.22:
        return r.choice(EPONYM_PHRASES)
    if k < 0.4:
        return f"{drug()} {r.choice([5, 10, 20, 25, 40, 50, 81, 100, 500, 1000])} {r.choice(['mg', 'mcg', 'units', 'mg/kg'])} {r.choice(['daily', 'BID', 'TID', 'q6h', 'PRN', 'at bedtime', 'x 7 days'])}"
    if k < 0.55:
        return f"BP {r.randint(90, 180)}/{r.randint(50, 110)}, HR {r.randint(50, 130)}, RR {r.randint(12, 28)}, SpO2 {r.randint(88, 100)}% on {r.choice(['RA', '2L NC', 'room air'])}"
    if k < 0.67:
        return f"{r.choice(LABS)} {r.choice([r.randint(1, 300), round(r.uniform(0.1, 15), 1)])}"
    if k < 0.77:
        return f"at {_time(r)}"
    if k < 0.87:
        return r.choice([f"for {r.randint(2, 14)} days", f"x{r.randint(2, 6)} weeks", f"over the past {r.randint(2, 10)} hours", f"{r.randint(1, 9)}/10 pain",
                         f"POD {r.randint(1, 5)}", f"HD#{r.randint(1, 9)}", f"{r.randint(2, 20)} pack-years", f"G{r.randint(1, 5)}P{r.randint(0, 4)}"])
    if k < 0.93:
        return f"{r.choice(['score', 'grade', 'stage', 'level'])} {r.randint(1, 4)}{r.choice(['', 'a', 'b'])}"
    return _code_or_level(r)


def _code_or_level(r: random.Random) -> str:
    """Diagnosis codes, spinal levels, rib numbers, sizes and ranges: numbers that are clinical, not identifiers or dates."""
    k = r.randrange(6)
    if k == 0:
        return r.choice([f"ICD-10 {r.choice('ABCEFGIJKLMNRSZ')}{r.randint(0, 99):02d}.{r.randint(0, 9)}", f"{r.randint(1, 999):03d}.{r.randint(0, 99)}",
                         f"V{r.randint(10, 89)}.{r.randint(0, 99)}", f"dx code {r.choice('IJKR')}{r.randint(10, 99)}.{r.randint(0, 9)}"])
    if k == 1:
        sp = r.choice("CTL")
        top = {"C": 7, "T": 12, "L": 5}[sp]
        a = r.randint(1, top - 1)
        return r.choice([f"{sp}{a}", f"{sp}{a}-{sp}{a + 1}", f"{sp}{a}-{a + 1}", f"{sp}{a} vertebral body"])
    if k == 2:
        n = r.randint(1, 12)
        suf = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return f"{r.choice(['right', 'left', 'the'])} {n}{suf} {r.choice(['rib', 'posterior rib', 'anterior rib', 'intercostal space'])}"
    if k == 3:
        return f"{r.randint(1, 9)} to {r.randint(10, 20)} {r.choice(['weeks', 'days', 'mm', 'cm', 'months'])}"
    if k == 4:
        return f"{r.randint(1, 9)}.{r.randint(0, 9)} x {r.randint(1, 9)}.{r.randint(0, 9)} {r.choice(['cm', 'mm'])}"
    return f"{r.randint(1, 4)}-{r.randint(5, 9)} {r.choice(['mm', 'cm', 'views', 'beats'])}"


@lru_cache(maxsize=4)
def real_clinical_text(split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(sentences, problem terms) of the IU X-ray reports of one split, or two empty tuples when the reports are
    not installed. Sentences with a ``XXXX`` placeholder are left out (their context had PHI removed)."""
    try:
        from ..data.sources.iu_xray import load_iu_reports
        from ..exceptions import DataFormatError

        reports = load_iu_reports()
    except (ImportError, DataFormatError, OSError):
        return (), ()
    sents: set[str] = set()
    terms: set[str] = set()
    for rep in reports:
        if rep["split"] != split:
            continue
        for text in rep["sections"].values():
            for sent in re.split(r"(?<=\.)\s+", text):
                sent = sent.strip().rstrip(".")
                if "XXXX" not in sent and 3 <= len(sent.split()) <= 30:
                    sents.add(sent)
        for t in rep["major"]:
            for part in t.split("/"):
                part = part.strip()
                if len(part) > 3 and part.lower() != "normal":
                    terms.add(part[:1].upper() + part[1:])
    return tuple(sorted(sents)), tuple(sorted(terms))


class _Writer:
    """Builds one note as segments; every PHI value is a segment with its label, so offsets are exact."""

    def __init__(self, r: random.Random, v: PhiValues, real: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
                 vocab: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())):
        self.r, self.v = r, v
        self.real_sents, self.real_terms = real
        self.vocab_drugs, self.vocab_dx = vocab
        self.clin = CLIN + CLIN_VOCAB if vocab[0] or vocab[1] else CLIN
        if v.variety:
            self.clin = self.clin + CLIN_VARIETY
        self.segs: list[Seg] = []
        self.pt = v.person()
        self.sex = r.choice(["F", "M"])
        self.dr = [v.person() for _ in range(3)]
        self.fam = [v.first_name() for _ in range(2)]
        self.org = v.organisation()

    def drug(self) -> str:
        """A drug name: half from the broad offline vocabulary (when installed), half from the hand list."""
        if self.vocab_drugs and self.r.random() < 0.5:
            return cased(self.r, self.r.choice(self.vocab_drugs), "drug")
        return self.r.choice(DRUGS)

    def diagnosis(self) -> str | None:
        return cased(self.r, self.r.choice(self.vocab_dx), "dx") if self.vocab_dx else None

    # slot fillers: each returns segments
    def fill(self, slot: str) -> list[Seg]:
        r, v = self.r, self.v
        f, la = self.pt
        if slot == "pt":
            return [(r.choice(v.name_forms(f, la)[:9]), "NAME")]
        if slot == "ptfull":
            return [(r.choice([f"{f} {la}", f"{la}, {f}", f"{la.upper()}, {f.upper()}", f"{f.upper()} {la.upper()}"]), "NAME")]
        if slot == "ptlast":
            title = r.choice(["Mr. " if self.sex == "M" else "Mrs. ", "Ms. " if self.sex == "F" else "Mr ", "", "", "Pt "])
            return [(title, None), (la, "NAME")] if title else [(la, "NAME")]
        if slot == "ptfirst":
            return [(r.choice([f, f.lower()]), "NAME")]
        if slot == "dr":
            df, dl = r.choice(self.dr)
            form = r.choice(["Dr. {l}", "Dr {l}", "dr {l}", "{f} {l}, MD", "{f} {l}, NP", "{f} {l} PA-C", "Dr. {f} {l}", "DR. {L}", "{l}", "{f} {l}, RN",
                             "Dr. {fi}. {l}"])
            pre, _, rest = form.partition("{")
            text = form.format(l=dl, f=df, L=dl.upper(), fi=df[0])
            # the title and credential are not PHI: tag the name only
            name = re.sub(r"^(?:Dr\.?|dr|DR\.)\s+", "", text)
            name = re.sub(r",?\s+(?:MD|NP|RN|PA-C)$", "", name)
            a = text.index(name)
            return [(text[:a], None), (name, "NAME"), (text[a + len(name):], None)]
        if slot == "fam":
            rel = r.choice(["daughter", "son", "wife", "husband", "sister", "brother", "mother", "granddaughter", "neighbor", "friend", "partner"])
            who = r.choice(self.fam)
            if r.random() < 0.3:
                who = f"{who} {r.choice([self.pt[1], v.last_name()])}"
            return [(f"{r.choice(['her', 'his', 'the patient’s', 'pt’s', 'their'])} {rel} ", None), (who if r.random() < 0.8 else who.lower(), "NAME")]
        if slot in ("date", "pdate"):
            return [(v.date(partial_rate=0.7 if slot == "pdate" else 0.15), "DATE")]
        if slot == "age90":
            before, age, after = v.age_over_89()
            return [(before, None), (age, "AGE"), (after, None)]
        if slot in ("phone", "fax"):
            return [(v.phone(), "CONTACT")]
        if slot == "email":
            return [(v.email(*self.pt) if r.random() < 0.5 else v.email(), "CONTACT")]
        if slot == "url":
            return [(v.url(), "CONTACT")]
        if slot == "ip":
            return [(v.ip(), "CONTACT")]
        if slot in ("mrn", "id", "acc", "plan", "lic", "dev"):
            if r.random() < 0.35:  # a label word written against the number: context, not PHI
                word = r.choice(ID_WORDS[slot])
                return [(word + r.choice([" ", ": ", "#", " #", ":", "-", " no. "]), None), (v.identifier(), "ID")]
            return [(v.identifier(), "ID")]
        if slot == "ssn":
            return [(v.identifier("ssn"), "ID")]
        if slot == "veh":
            return [(v.identifier("vehicle"), "ID")]
        if slot == "addr":
            return [(v.street_address(), "LOCATION")]
        if slot == "city":
            return [(v.city(), "LOCATION")]
        if slot == "cityst":  # a state is not PHI under Safe Harbor (only smaller subdivisions are)
            return [(v.city(), "LOCATION"), (", ", None), (v.state(), None), (" ", None), (v.zip_code(), "LOCATION")]
        if slot == "zip":
            return [(v.zip_code(), "LOCATION")]
        if slot in ("org", "hosp"):
            return [(self.org if r.random() < 0.5 else v.organisation(), "ORG")]
        if slot == "time":
            return [(_time(r), "~NEG")]
        if slot == "neg":
            return [(_neg(r, self.drug, self.v.variety), "~NEG")]
        if slot == "finding":
            if self.real_sents and r.random() < 0.4:
                return [(r.choice(self.real_sents), None)]
            return [(r.choice(FINDINGS), None)]
        if slot == "problem":
            if self.vocab_dx:
                k = r.random()
                if k < 0.5:
                    return [(self.diagnosis(), "~NEG")]
                if self.real_terms and k < 0.85:
                    return [(r.choice(self.real_terms), "~NEG")]
                return [(r.choice(EPONYM_PHRASES), "~NEG")]
            if self.real_terms and r.random() < 0.7:
                return [(r.choice(self.real_terms), "~NEG")]
            return [(r.choice(EPONYM_PHRASES), "~NEG")]
        if slot == "drug":
            return [(self.drug(), "~NEG")]
        if slot == "eponym":
            if self.vocab_dx and r.random() < 0.4:
                return [(self.diagnosis(), "~NEG")]
            return [(r.choice(EPONYM_PHRASES), "~NEG")]
        if slot == "lab":
            return [(r.choice(LABS), "~NEG")]
        if slot == "labelw":
            return [(r.choice(LABEL_WORDS), None)]
        if slot == "dept":
            return [(r.choice(DEPARTMENTS), "~NEG")]
        if slot == "sex":
            return [(r.choice(["female", "male", "woman", "man", "F", "M"]), None)]
        raise KeyError(slot)

    def add(self, template: str) -> None:
        for i, part in enumerate(re.split(r"\{(\w+)\}", template)):
            if i % 2:
                self.segs += self.fill(part)
            elif part:
                self.segs.append((part, None))


# -- the genres: each a list of sections; a section is a list of alternative templates --------------------------
H = {  # header lines
    "name": ["Patient: {ptfull}\n", "PATIENT NAME: {ptfull}\n", "Name: {ptfull}\n", "Pt: {ptfull}\n", "RE: {ptfull}\n", "Patient Name:   {ptfull}\n"],
    "mrn": ["MRN: {mrn}\n", "Medical Record #: {mrn}\n", "MR#{mrn}\n", "Record No. {mrn}\n", "Hospital No: {mrn}\n", "Chart: {mrn}\n"],
    "dob": ["DOB: {date}\n", "Date of Birth: {date}\n", "D.O.B. {date}\n", "Born {date}\n", "DOB {date} ({age90})\n"],
    "adm": ["Admission Date: {date}\nDischarge Date: {date}\n", "Admitted: {date}   Discharged: {date}\n", "Date of Service: {date}\n", "Visit date: {date}\n"],
    "att": ["Attending: {dr}\n", "Attending Physician: {dr}\n", "Provider: {dr}\n", "PCP: {dr}\n", "Referring physician: {dr}\n", "Dictated by: {dr}\n"],
    "misc": ["{labelw}: {phone}\n", "{labelw}: {id}\n", "Seen in {dept}.\n", "SSN: {ssn}\n", "Account: {acc}\n", "Insurance: {org}, member ID {plan}\n", "Phone: {phone}\n", "Address: {addr}, {cityst}\n",
             "Email: {email}\n", "Accession: {id}\n", "Encounter #{id}\n", "Facility: {hosp}\n", "Emergency contact: {fam}, {phone}\n"],
}
CLIN = [  # clinical sentences, most with hard negatives, some with PHI
    "{finding}. ", "Started {neg}. ", "Labs notable for {neg}. ", "Vitals: {neg}. ", "History of {eponym}. ", "Continue {neg}. ",
    "Seen at {time} with {finding}. ", "Pain {neg}. ", "{drug} was held {neg}. ", "Repeat {lab} in the morning. ", "No evidence of {eponym}. ",
    "{ptlast} reports {finding}. ", "Discussed with {fam} at bedside. ", "Plan discussed with {dr}. ", "Follow up with {dr} on {pdate}. ",
    "Per {dr}'s note, {finding}. ", "d/w {dr}: {finding}. ", "{ptfirst} states she feels better today. ", "{ptfirst} states he feels better today. ",
    "Transferred from {hosp} on {date}. ", "Last colonoscopy {pdate}. ", "Prior imaging from {pdate} reviewed. ", "{fam} will pick her up at {time}. ",
    "Lives with {fam} in {city}. ", "Works at {org}. ", "Prescription sent to {org}, fax {fax}. ", "Call {phone} with results. ",
    "Patient is a {age90} {sex} with {finding}. ", "Mr. {ptlast} was seen and examined. ", "Ms. {ptlast} was seen and examined. ",
    "{ptfull} is a pleasant patient with {eponym}. ", "Compared with the study of {date}, {finding}. ", "Device serial number {dev} checked. ",
    "Pacemaker interrogated ({dev}), {finding}. ", "Drove in a car with plate {veh}. ", "Portal message via {url}. ", "Login from {ip} noted. ",
    "Her email is {email}. ", "Rx for {neg}. ", "Hold {drug} if {neg}. ", "{eponym} ruled out. ", "Discussed code status with {fam}. ",
    "{dept} consulted. ", "Seen by {dept} today; {finding}. ", "{neg}, {neg}. ", "Scores: {neg}; {neg}. ", "Transfer to {dept} for {finding}. ",
    "{labelw} on file. ", "Patient has a {neg} in place. ", "Problem list: {problem}, {problem}. ", "{problem}. ", "Dx: {problem}\n",
    "{problem} noted on {pdate}. ", "{ptlast} has {problem}. ",
]
CLIN_VOCAB = [  # added to CLIN when the broad drug/diagnosis vocabularies are on: lists and problem statements
    "Switched from {drug} to {drug}. ", "Allergies: {drug}, {drug}. ", "PMH: {problem}; {problem}; {problem}. ",
    "Medications: {drug}, {drug}, {drug}. ", "{drug} and {drug} were started. ", "Assessment: {problem}. ", "Admitted with {problem}. ",
    "{ptlast} is on {drug} for {problem}. ",
]
CLIN_VARIETY = [  # added to CLIN in ``variety`` corpora: a person named bare at the start of telegraphic or plain sentences,
    # next to capitalised clinical words (organisms, devices, scores) that are not names
    "{ptfirst} tolerated the procedure well. ", "{ptfirst} {finding}. ", "{ptlast} {finding}. ", "{ptfirst} ({ptlast}) on {neg}. ",
    "{ptfirst} declined {drug}. ", "{ptfirst} and {fam} attended. ", "{ptfirst} is worried about {problem}. ", "{ptlast}: {neg}, {neg}. ",
    "{ptfirst} seen on the ward; {neg} noted. ", "{ptfull} - {neg}. ", "Cultures grew {neg}; {ptfirst} informed. ", "{neg} in situ, {ptfirst} comfortable. ",
]
GENRES: dict[str, list[list[str]]] = {
    "discharge summary": [["DISCHARGE SUMMARY\n", "Discharge Summary\n\n"], ["{H:name}{H:mrn}{H:dob}{H:adm}{H:att}", "{H:name}{H:adm}{H:mrn}{H:att}{H:misc}"],
                          ["\nHISTORY OF PRESENT ILLNESS:\n", "\nHPI: "], ["{CLIN}{CLIN}{CLIN}"], ["\nHOSPITAL COURSE:\n", "\nHospital course: "],
                          ["{CLIN}{CLIN}{CLIN}{CLIN}"], ["\nDISCHARGE MEDICATIONS: {neg}; {neg}.\n"], ["\nFOLLOW-UP: {dr} at {org} on {date}, {phone}.\n",
                                                                                                      "\nFollow up with {dr} in 2 weeks ({phone}).\n"]],
    "progress note": [["PROGRESS NOTE {date}\n", "Progress Note - HD#3\n", "SOAP note\n"], ["{H:name}", ""], ["S: {CLIN}{CLIN}\n"], ["O: {neg}. {finding}.\n"],
                      ["A/P: {CLIN}{CLIN}\n"], ["{dr}\n", "Signed: {dr} {date} {time}\n"]],
    "nursing note": [["Nursing note {time}: ", "RN NOTE ", "shift note - "], ["{CLIN}{CLIN}{CLIN}", "pt resting. {CLIN}{CLIN}"], ["{CLIN}"],
                     ["Report given to {dr}.", "will continue to monitor.", "{fam} updated by phone {phone}."]],
    "ed triage": [["ED TRIAGE {date} {time}\n"], ["{H:name}{H:dob}", "{H:name}{H:misc}"], ["CC: {finding}\n"], ["{CLIN}{CLIN}"], ["Brought in by {fam}. EMS from {city}.\n", "Arrived by private car.\n"]],
    "radiology report": [["EXAM: CHEST PA AND LATERAL\n", "EXAMINATION: CT ABDOMEN PELVIS\n", "XR KNEE 3 VIEWS\n"], ["DATE: {date}\nACCESSION: {id}\n", "Accession #{id}  Date: {date}\n"],
                         ["{H:name}{H:mrn}", "{H:mrn}"], ["INDICATION: {finding}.\n"], ["COMPARISON: {date}.\n", "COMPARISON: None.\n"],
                         ["FINDINGS: {finding}. {finding}.\n"], ["IMPRESSION: {finding}.\n"], ["Dictated by: {dr} on {date} at {time}\n", "Electronically signed by {dr}, {date}\n"]],
    "referral letter": [["{org}\n{addr}\n{cityst}\nTel {phone}  Fax {fax}\n\n"], ["{date}\n\n"], ["Dear {dr},\n\n"],
                        ["I am writing to refer {ptfull} (DOB {date}, MRN {mrn}) of {addr}, {city}, who {CLIN}", "Re: {ptfull}, DOB {date}\nThank you for seeing this patient. {CLIN}"],
                        ["{CLIN}{CLIN}\n"], ["She can be reached at {phone} or {email}.\n", "His daughter {fam} ({phone}) coordinates care.\n", ""],
                        ["\nYours sincerely,\n{dr}\n{org}\n", "\nKind regards,\n\n{dr}\n"]],
    "lab message": [["Result notification\n", "LAB RESULT MESSAGE\n"], ["To: {dr}\nFrom: {org} Laboratory\n"], ["Patient: {ptfull}  MRN {mrn}\n"],
                    ["Specimen {id} collected {date} {time}: {neg}; {neg}.\n"], ["Critical value called to {dr} at {time} by {fam}.\n", "Please call {phone} to discuss.\n", ""]],
    "portal message": [["hi ", "Hello ", "hey ", "Dear Dr ", ""], ["{drlast}, ", "this is {ptfirst}, ", "its {fam}, ", ""],
                       ["{mymsg}"], [" my number is {phone}", " you can reach me at {email}", " thanks", ""], [" - {ptfirst}", " {ptfull}", ""]],
    "text message": [["{ptfirst}: ", "from {fam}: ", ""], ["{mymsg}"], [" call {phone}", " ok?", " thx", ""]],
    "consult note": [["CONSULTATION\n"], ["Requesting physician: {dr}\nConsultant: {dr}\nDate: {date}\n"], ["{H:name}{H:mrn}", ""],
                     ["Reason for consult: {finding}.\n"], ["{CLIN}{CLIN}{CLIN}\n"], ["Recommendations: {CLIN}{CLIN}\n"], ["Thank you for this consult. {dr}\n"]],
    "operative note": [["OPERATIVE REPORT\n"], ["DATE OF PROCEDURE: {date}\nSURGEON: {dr}\nASSISTANT: {dr}\n"], ["{H:name}"],
                       ["PROCEDURE: {eponym}.\n", "PROCEDURE: laparoscopic cholecystectomy.\n"], ["FINDINGS: {CLIN}\n"], ["Implant lot {dev}. EBL 50 mL.\n", "EBL minimal.\n"]],
    "telephone encounter": [["Telephone encounter {date} {time}\n", "Phone call - "], ["Spoke with {fam} at {phone}. ", "Called pt at {phone}, left voicemail. "],
                            ["{CLIN}{CLIN}"], ["Callback number {phone}.", ""]],
    "social work note": [["SOCIAL WORK NOTE\n", "SW assessment: "], ["{ptfull} lives at {addr}, {cityst} with {fam}. "], ["Employed by {org} until {pdate}. ", "Retired from {org}. "],
                         ["Insurance: {org} member {plan}. ", ""], ["{CLIN}{CLIN}"], ["Contact {fam} at {phone}.", "Case discussed with {dr}."]],
    "pharmacy note": [["PHARMACY NOTE: ", "Rx: "], ["{neg}. {neg}. "], ["Prescriber: {dr}, DEA {lic}, NPI {id}. ", "Prescriber {dr} ({phone}). "], ["Dispensed at {org} on {date}."]],
    "pathology report": [["SURGICAL PATHOLOGY REPORT\n"], ["Case: {id}\nReceived: {date}\n"], ["{H:name}{H:dob}"], ["DIAGNOSIS: {finding}. {eponym}.\n"],
                         ["Pathologist: {dr}\n"]],
}
MSGS = ["i have been having {finding} since {pdate}, can i come in?", "my mom {fam} needs a refill of {drug}", "can you send my records to {org}?",
        "the {drug} makes me dizzy, should i stop it", "i moved to {addr} {city}, please update", "appt on {pdate} at {time} still ok?",
        "my test from {pdate} - what did it show", "i am at {hosp} er right now", "pharmacy is {org} on {addr}", "my sister {fam} will come with me"]


def _expand(w: _Writer, template: str) -> None:
    """Expand ``{H:x}``, ``{CLIN}``, ``{mymsg}``, ``{drlast}``, ``{sex}`` macros, then typed slots."""
    r = w.r
    out = []
    for i, part in enumerate(re.split(r"\{(H:\w+|CLIN|mymsg|drlast|sex)\}", template)):
        if i % 2 == 0:
            out.append(part)
        elif part.startswith("H:"):
            out.append(r.choice(H[part[2:]]))
        elif part == "CLIN":
            out.append(r.choice(w.clin))
        elif part == "mymsg":
            out.append(r.choice(MSGS))
        elif part == "drlast":
            out.append("{drl}")
        elif part == "sex":
            out.append(r.choice(["female", "male", "woman", "man", "F", "M"]))
    text = "".join(out)
    for i, part in enumerate(re.split(r"\{(drl)\}", text)):
        if i % 2:
            w.segs.append((r.choice(w.dr)[1], "NAME"))
        elif part:
            w.add(part)


_OCR = {"e": "c", "l": "1", "i": "l", "o": "0", "a": "o", "E": "F", "I": "1", "O": "0", "rn": "m", "m": "rn"}


def _noise(r: random.Random, segs: list[Seg]) -> list[Seg]:
    """Casing, OCR confusions, doubled spaces and line wrapping. Length-preserving inside PHI (offsets stay exact)."""
    mode = r.random()
    ocr_rate = r.choice([0.0, 0.0, 0.15, 0.4])  # some notes are clean, some come from a scanner
    out: list[Seg] = []
    for t, lab in segs:
        if mode < 0.12:
            t = t.lower()
        elif mode < 0.17:
            t = t.upper()
        if lab in (None, "~NEG") and r.random() < ocr_rate:  # OCR confusions in the non-PHI text (labels, clinical words)
            t = re.sub(r"[elioaEIO]|rn|m", lambda m: _OCR[m.group(0)] if r.random() < 0.06 else m.group(0), t)
        if lab in (None, "~NEG") and r.random() < 0.1:
            t = t.replace(". ", ".  ")
        out.append((t, lab))
    if r.random() < 0.3:  # wrap at 60-80 columns: a space becomes a newline (PHI may be split over two lines)
        width, col, wrapped = r.randint(60, 80), 0, []
        for t, lab in out:
            chars = list(t)
            for j, ch in enumerate(chars):
                col = 0 if ch == "\n" else col + 1
                if ch == " " and col >= width:
                    chars[j], col = "\n", 0
            wrapped.append(("".join(chars), lab))
        out = wrapped
    return out


def pieces_to_note(pieces: list[tuple[str, str | None]], nid: str, genre: str) -> Note:
    """A note from (text, label) pieces, as the held-out generators write them: a labelled piece is a PHI span
    without its surrounding whitespace, ``"~NEG"`` a hard negative, ``None`` plain text."""
    text, spans, negs, p = [], [], [], 0
    for t, lab in pieces:
        if lab == "~NEG":
            negs.append((p, p + len(t), "NEG"))
        elif lab and t.strip():
            a = p + len(t) - len(t.lstrip())
            spans.append((a, a + len(t.strip()), lab))
        text.append(t)
        p += len(t)
    return Note(id=nid, text="".join(text), spans=spans, genre=genre, negatives=negs)


def render(segs: list[Seg], note_id: str, genre: str) -> Note:
    text, spans, negs, pos = [], [], [], 0
    for t, lab in segs:
        if not t:
            continue
        if lab == "~NEG":
            negs.append((pos, pos + len(t), "NEG"))
        elif lab is not None:
            a, b = pos, pos + len(t)
            while a < b and t[a - pos].isspace():
                a += 1
            while b > a and t[b - pos - 1].isspace():
                b -= 1
            if b > a:
                spans.append((a, b, lab))
        text.append(t)
        pos += len(t)
    return Note(id=note_id, text="".join(text), spans=spans, genre=genre, negatives=negs)


def make_training_notes(n: int, seed: int = 0, locales: tuple[str, ...] = TRAIN_LOCALES, partition: str = "train",
                        real_split: str | None = "train", vocab_partition: str | None = None,
                        exclude_locales: tuple[str, ...] = (), variety: bool = False) -> list[Note]:
    """``n`` labelled notes of generator A (genres drawn uniformly); ``seed`` 0.. for training, another for the
    development set. ``real_split``: which split of the IU reports lends real clinical sentences (None: none).
    ``vocab_partition``: which hash partition of the drug and diagnosis vocabularies (:mod:`.vocab`) the hard
    negatives also come from (None, the default and the shipped tagger's corpus: the hand lists only; "test" for
    development notes: terms a tagger trained with "train" never saw).
    ``exclude_locales``: PHI pool values also found in these locales are left out (see :class:`PhiValues`).
    ``variety``: the layouts and negatives added for tagger v4 (:class:`PhiValues` ``variety``, :data:`ORGANISMS`,
    :data:`DEVICE_BRANDS`, :data:`NAMED_SCORES`, :data:`EPONYM_MORE`)."""
    r = random.Random(seed)
    values = PhiValues(r, locales, partition, exclude_locales=exclude_locales, variety=variety)
    real = real_clinical_text(real_split) if real_split else ((), ())
    vocab = (drug_terms(vocab_partition), diagnosis_terms(vocab_partition)) if vocab_partition else ((), ())
    genres = sorted(GENRES)
    notes = []
    for i in range(n):
        genre = genres[i % len(genres)] if i < len(genres) else r.choice(genres)
        w = _Writer(r, values, real, vocab)
        for alternatives in GENRES[genre]:
            _expand(w, r.choice(alternatives))
            if genre in ("discharge summary", "progress note", "consult note") and r.random() < 0.3:
                _expand(w, r.choice(w.clin))
        notes.append(render(_noise(r, w.segs), f"A{seed}-{i}", genre))
    return notes
