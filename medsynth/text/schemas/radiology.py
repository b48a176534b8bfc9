"""Radiology report schema: finding, anatomy/location, severity, device, negation cue.

``FINDING`` mentions carry canonical values that are the IU chest X-ray document labels (MeSH major terms cut at
the first "/"), from the finding lexicon in :mod:`medsynth.text.labels`, whose agreement with the real MeSH labels
is measured on the IU validation split. Relations: ``located_at`` (finding/device → anatomy), ``has_severity``
(finding → severity), ``negated_by`` (negated finding → its negation cue).
"""

from __future__ import annotations

from ..labels import FINDING_LEXICON, LABEL_WORDS, NEGATION_CUES, NORMAL_PHRASES, POST_NEGATION

_SIDE = r"(?:(?:right|left|bilateral)\s+)?"
ANATOMY = {
    "lobe": [_SIDE + r"(?:upper|middle|lower)\s+lobes?", r"lingula\w*"],
    "lung zone": [_SIDE + r"(?:lung\s+)?(?:bases?|apex|apices|apical|midlung|mid lung|perihilar region)", r"(?:bi)?basilar", r"bibasal",
                  r"retrocardiac(?: region)?"],
    "lung": [_SIDE + r"lungs?", r"(?:lung\s+)?parenchyma", r"hemithorax"],
    "pleura": [r"(?:right|left|bilateral)?\s*costophrenic (?:angles?|sulci|sulcus)", r"pleura(?:l space)?"],
    "hilum": [_SIDE + r"hil(?:um|a|ar regions?)"],
    "mediastinum": [r"mediastin(?:um|al contours?)", r"cardiomediastinal silhouette", r"(?:cardiac|heart) (?:silhouette|contours?|size)", r"\bheart\b"],
    "aorta": [r"(?:thoracic |descending |ascending )?aorta", r"aortic arch", r"aortic knob"],
    "diaphragm": [_SIDE + r"(?:hemi)?diaphragms?"],
    "spine": [r"(?:thoracic|lumbar|cervical) spine", r"\bspine\b", r"vertebra(?:e|l bodies)?"],
    "chest wall": [r"chest wall", r"ribs?\b", r"clavicles?", r"soft tissues?", r"(?:bony|osseous) structures"],
    "vasculature": [r"pulmonary vascularity", r"pulmonary vasculature", r"vascular(?:ity)?\b"],
}
SEVERITY = {
    "minimal": [r"minimal(?:ly)?", r"trace", r"tiny", r"slight(?:ly)?", r"borderline"],
    "mild": [r"mild(?:ly)?", r"small"],
    "moderate": [r"moderate(?:ly)?"],
    "severe": [r"severe(?:ly)?", r"large", r"marked(?:ly)?", r"extensive"],
}
# canonical values of devices are IU document labels too (MeSH terms for devices)
DEVICE = {
    "Implanted Medical Device": [r"pacemaker", r"pacer", r"(?:dual|single)[- ]lead (?:cardiac )?(?:pacemaker|device)", r"\baicd\b", r"\bicd\b", r"defibrillator", r"loop recorder"],
    "Catheters, Indwelling": [r"(?:central venous |venous |dialysis )?catheters?", r"\bpicc(?: line)?\b", r"port-a-cath", r"(?:right|left)[- ]sided (?:port|catheter)", r"central line", r"\bport\b"],
    "tube": [r"(?:endotracheal|nasogastric|chest|feeding|tracheostomy) tubes?", r"\bet tube\b", r"\bng tube\b"],
    "Surgical Instruments": [r"sternotomy wires?", r"(?:surgical|vascular|cholecystectomy) clips?", r"cerclage wires?", r"sutures?", r"(?:orthopedic|spinal) hardware", r"stents?", r"sternotomy"],
}

SCHEMA = {
    "name": "radiology",
    "description": "Chest radiograph reports: FINDING (canonical values = IU document labels), ANATOMY, SEVERITY, DEVICE, NEGATION_CUE",
    "entities": [
        {"name": "FINDING", "description": "a radiographic finding; canonical value = document label", "prompt_name": "finding",
         "lexicon": {k: v for k, v in FINDING_LEXICON.items() if k not in DEVICE}, "doc_label": True, "negatable": True},
        {"name": "DEVICE", "description": "an implanted or indwelling device, tube or surgical material", "prompt_name": "device",
         "lexicon": DEVICE, "doc_label": True, "negatable": True},
        {"name": "SEVERITY", "description": "a severity or size modifier", "prompt_name": "severity", "lexicon": SEVERITY, "sample": False},
        {"name": "ANATOMY", "description": "an anatomical location", "prompt_name": "location", "lexicon": ANATOMY},
    ],
    "relations": [
        {"name": "has_severity", "head": ["FINDING"], "tail": ["SEVERITY"], "template": "{tail} {head}", "max_chars": 24,
         "description": "the severity modifier of a finding (nearest, same sentence)"},
        {"name": "located_at", "head": ["FINDING", "DEVICE"], "tail": ["ANATOMY"], "template": "{head} in the {tail}", "max_chars": 40,
         "description": "where a finding or device is (nearest anatomy in the same sentence)"},
        {"name": "negated_by", "head": ["FINDING", "DEVICE"], "tail": ["NEGATION_CUE"], "rule": "negation", "template": "no {head}",
         "description": "a negated finding and its negation cue"},
    ],
    "negation_cues": NEGATION_CUES,
    "post_negation": POST_NEGATION,
    "negation_cue_label": "NEGATION_CUE",
    "normal_label": "normal",
    "normal_patterns": NORMAL_PHRASES,
    "label_words": LABEL_WORDS,
    "document": {
        "header": "Chest radiograph reports (PA and lateral views). Each report starts with the list of its findings.",
        "open": "FINDINGS:",
        "close": "IMPRESSION:",
        "stop": ["\n\n"],
    },
}
