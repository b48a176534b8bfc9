"""The chest radiograph vocabulary: finding lexicon, negation cues and label words.

Data only. The radiology schema (:mod:`medsynth.text.schemas.radiology`) builds its annotator from it: that one
matcher verifies that a generated report carries the labels it was asked for, relabels texts by what they actually
say and produces finding / negation-cue spans with exact character offsets. Its agreement with the real MeSH labels
is measured on the IU validation split and reported (``detector_agreement``), so its errors are visible.
"""

from __future__ import annotations

__all__ = ["FINDING_LEXICON", "NEGATION_CUES", "POST_NEGATION", "NORMAL_PHRASES", "LABEL_WORDS"]

# label -> regexes (case-insensitive) of positive mentions. Keys are IU MeSH major terms cut at "/".
FINDING_LEXICON: dict[str, list[str]] = {
    "Cardiomegaly": [r"cardiomegaly", r"(?:heart|cardiac silhouette|cardiac contour|heart size)\s+(?:is\s+|are\s+|appears\s+|remains\s+)?(?:again\s+)?(?:mildly\s+|moderately\s+|markedly\s+|borderline\s+|slightly\s+)?(?:enlarged|increased)",
                     r"enlarged (?:heart|cardiac silhouette|cardiomediastinal silhouette)", r"enlargement of the (?:heart|cardiac silhouette)"],
    "Opacity": [r"opacit(?:y|ies)", r"opacification"],
    "Pulmonary Atelectasis": [r"atelecta(?:sis|tic)"],
    "Lung": [r"hypoinflat\w*", r"hyperinflat\w*", r"hyperexpan\w*", r"hyperaerat\w*", r"low lung volumes?", r"lung volumes are (?:low|decreased)",
             r"decreased lung volumes?", r"hyperlucen\w*", r"emphysema\w*", r"hyperdisten\w*"],
    "Calcinosis": [r"calcifi(?:ed|cations?)(?! granuloma)", r"calcified (?:lymph nodes?|nodes?|nodules?|aort\w+)"],
    "Calcified Granuloma": [r"calcified granulom(?:as?|ata)", r"granulomas? (?:is|are) calcified"],
    "Thoracic Vertebrae": [r"(?:degenerative (?:changes?|disease)|spondylosis|osteophytes?|degeneration) (?:of|in|within|involving) the (?:mid |lower |upper )?thoracic spine",
                           r"thoracic (?:spine )?(?:degenerative|spondylosis)", r"(?:mid)?thoracic (?:vertebra|vertebrae|vertebral bod(?:y|ies)|vertebral)"],
    "Cicatrix": [r"scar(?:ring|s)?\b", r"cicatri\w*", r"fibrotic"],
    "Spine": [r"degenerative (?:changes?|disease) (?:of|in|within) the spine", r"spine (?:demonstrates|shows) degenerative", r"degenerative changes of the spine",
              r"(?:degenerative|arthritic) changes (?:are|is) (?:noted|present|seen) in the spine", r"spondylosis"],
    "Aorta": [r"tortuous(?: and \w+)? (?:thoracic )?aorta", r"aorta (?:is|appears|remains)\s+(?:\w+\s+){0,2}(?:tortuous|ectatic|unfolded|dilated|elongated)", r"ectatic aorta",
              r"unfolded aorta", r"aortic (?:tortuosity|ectasia|unfolding)"],
    "Markings": [r"(?:interstitial|bronchovascular|vascular|lung) markings?", r"bronchovascular crowding", r"(?:coarse|prominent) (?:interstitial )?markings"],
    "Pleural Effusion": [r"(?:pleural )?effusions?"],
    "Granulomatous Disease": [r"granulomatous disease", r"prior granulomatous"],
    "Airspace Disease": [r"air ?space disease", r"consolidations?"],
    "Catheters, Indwelling": [r"catheter", r"(?:central|venous) line", r"\bpicc\b", r"port-a-cath", r"\bport\b"],
    "Atherosclerosis": [r"atherosclero\w*", r"atheromatous"],
    "Nodule": [r"nodules?(?! calcified)", r"nodular"],
    "Density": [r"densit(?:y|ies)"],
    "Deformity": [r"deformit(?:y|ies)"],
    "Diaphragm": [r"(?:elevat\w+|flatten\w+) (?:of the )?(?:left |right )?(?:hemi)?diaphragms?", r"(?:hemi)?diaphragms? (?:is|are) (?:elevated|flattened)"],
    "Implanted Medical Device": [r"pacemaker", r"defibrillator", r"\baicd\b", r"\bicd\b", r"loop recorder"],
    "Surgical Instruments": [r"(?:surgical|sternotomy|cerclage) (?:clips?|wires?|sutures?)", r"sternotomy", r"surgical clips?"],
    "Scoliosis": [r"scoliosis", r"(?:levo|dextro)scoliosis", r"(?:levo|dextro)convex curvature"],
    "Fractures, Bone": [r"fractur(?:es?|ed)(?! or )"],
    "Pulmonary Congestion": [r"(?:vascular |pulmonary )?congestion", r"cephalization"],
    "Pulmonary Edema": [r"(?:pulmonary |interstitial |alveolar )?edema"],
    "Infiltrate": [r"infiltrates?"],
    "Pneumothorax": [r"pneumothora(?:x|ces)"],
}

NEGATION_CUES = [r"\bno\b", r"\bnot\b", r"\bwithout\b", r"\bnegative for\b", r"\bfree of\b", r"\bno evidence of\b", r"\bresolved\b",
                 r"\bresolution of\b", r"\babsence of\b", r"\bclear of\b", r"\bnor\b", r"\bno\s+(?:large|significant|focal|acute)\b",
                 r"\brule out\b", r"\bexclude\w*\b"]
POST_NEGATION = [r"^[^.;]{0,40}?\b(?:is|are|was|were)\s+(?:not|no longer)\s+(?:seen|noted|identified|present|visualized|appreciated|evident|demonstrated)\b",
                 r"^[^.;]{0,20}?\b(?:has|have)\s+resolved\b", r"^\s*(?:is|are)\s+absent\b"]
NORMAL_PHRASES = [r"\bnormal\b", r"\bclear\b", r"within normal limits", r"no acute", r"unremarkable", r"\bstable\b", r"negative"]

#: label words used in prompts (verbalizer base forms)
LABEL_WORDS: dict[str, str] = {
    "Cardiomegaly": "cardiomegaly (enlarged heart)", "Opacity": "lung opacity", "Pulmonary Atelectasis": "atelectasis",
    "Lung": "abnormal lung volumes (hypoinflation or hyperinflation)", "Calcinosis": "calcification", "Calcified Granuloma": "calcified granuloma",
    "Thoracic Vertebrae": "degenerative changes of the thoracic spine", "Cicatrix": "scarring", "Spine": "degenerative changes of the spine",
    "Aorta": "tortuous aorta", "Markings": "prominent interstitial markings", "Pleural Effusion": "pleural effusion",
    "Granulomatous Disease": "granulomatous disease", "Airspace Disease": "airspace disease", "Catheters, Indwelling": "indwelling catheter",
    "Atherosclerosis": "atherosclerosis", "Nodule": "pulmonary nodule", "Density": "density", "Deformity": "deformity",
    "Diaphragm": "elevated hemidiaphragm", "Implanted Medical Device": "pacemaker", "Surgical Instruments": "sternotomy wires",
    "Scoliosis": "scoliosis", "Fractures, Bone": "rib fracture", "Pulmonary Congestion": "pulmonary congestion", "Pulmonary Edema": "pulmonary edema",
    "Infiltrate": "infiltrate", "Pneumothorax": "pneumothorax", "normal": "normal chest",
}
