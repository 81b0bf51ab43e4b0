"""Phrase tables of the CheXpert-style labeler (the *what*; ``labeler.py`` holds the *how*).

Every entry is a regular-expression fragment matched on lower-cased text with word
boundaries added by the engine. The lists follow the CheXpert labeler's mention, negation
and uncertainty vocabulary (Irvin et al., AAAI 2019; github.com/stanfordmlgroup/chexpert-labeler),
re-expressed as surface patterns because we do not run a dependency parser, plus common
radiology synonyms. They are general rules: nothing here targets an individual report.

Deliberate departures from CheXpert's lists, measured on the IU X-ray train+val reports:
Lung Lesion keeps "nodule" and "mass" but not "nodular density/opacity" (a shape word of an
opacity, which radiologists and indexers treat as an opacity); "likely" and "suggestive of"
stay positive as in CheXpert, but hedges such as "if", "correlate for" and "consideration"
are added to the uncertainty cues.
"""

from __future__ import annotations

# --- Mentions: phrases that name an observation directly ("no effusion" is a mention too). ---
MENTIONS: dict[str, tuple[str, ...]] = {
    "enlarged_cardiomediastinum": (
        r"widen\w* (?:of )?(?:the )?(?:superior )?mediastin\w*",
        r"mediastin\w* widening",
        r"enlarged cardiomediastin\w*",
        r"(?:superior )?mediastinal (?:mass|enlargement|widening)",
    ),
    "cardiomegaly": (
        r"cardiomegaly",
        r"cardiac enlargement",
        r"enlarg\w* (?:of )?(?:the )?(?:heart|cardiac silhouette)",
        r"enlarged heart",
    ),
    "lung_opacity": (
        r"opaci\w*",
        r"air[- ]?space (?:disease|process)",
        r"infiltrat\w*",
        r"increased (?:lung |pulmonary )?densit\w*",
        r"interstitial (?:marking|pattern|lung disease|prominence)\w*",
        r"reticula\w*",
        r"(?:parenchymal |pulmonary |lung )?scar\w*",
        r"peribronchial (?:thickening|cuffing)",
        r"decreased translucency",
    ),
    "lung_lesion": (
        r"mass(?:es)?",
        r"nodules?",
        r"lump",
        r"cavitary lesion",
        r"(?:lung|pulmonary) lesion",
        r"carcinoma",
        r"neoplasm\w*",
        r"tumou?r",
    ),
    "edema": (
        r"edema",
        r"oedema",
        r"heart failure",
        r"chf",
        r"(?:vascular|pulmonary|venous) congestion",
        r"congestive",
        r"vascular (?:prominence|engorgement|redistribution)",
        r"cephalization",
        r"kerley",
    ),
    "consolidation": (r"consolidat\w*",),
    "pneumonia": (
        r"pneumonia\w*",
        r"bronchopneumonia",
        r"pneumonitis",
        r"infectio\w*",
        r"infectious process",
    ),
    "atelectasis": (r"atelecta\w*", r"collapse\w*"),
    "pneumothorax": (r"\w*pneumothora\w*",),
    "pleural_effusion": (r"effusion\w*", r"pleural fluid", r"hydrothorax"),
    "pleural_other": (
        r"pleural (?:thickening|scar\w*|plaque\w*|calcification\w*|fibrosis)",
        r"pleural[- ]parenchymal (?:scar\w*|thickening)",
        r"pleuroparenchymal (?:scar\w*|thickening)",
        r"fibrothorax",
        r"pleural[- ]based (?:opacity|density)",
        r"pleural[- ]peripheral (?:scar\w*|thickening)",
        r"(?:fissural|fissure) thickening",
        r"thickening of the (?:\w+ )?fissures?",
        r"apical (?:pleural )?capping",
    ),
    "fracture": (r"fractur\w*", r"fx"),
    "support_devices": (
        r"pacer\w*",
        r"pacemaker\w*",
        r"picc",
        r"(?:central venous |venous |dialysis |port a cath |swan[- ]ganz )?(?:catheter\w*|line)",
        r"(?:chest |endotracheal |et |nasogastric |ng |feeding |enteric |tracheostomy )tubes?",
        r"tube",
        r"port[- ]?a[- ]?cath\w*",
        r"(?:power |infusion |chest |subcutaneous )?port",
        r"mediport",
        r"(?:prosthetic |mechanical |artificial )valve\w*",
        r"valve replacement",
        r"defibrillator\w*",
        r"aicd",
        r"icd",
        r"(?:nerve |spinal cord )?stimulator\w*",
        r"device\w*",
        r"generator\w*",
        r"tips?",
        r"tubing",
        r"(?:\w+ )?valve prosthes\w*",
        r"(?:internal )?fixation",
        r"arthroplast\w*",
        r"(?:surgical )?(?:plates?|screws?)",
        r"(?:bone )?anchors?",
        r"(?:pacing |pacer |pacemaker )?leads?",
        r"drain\w*",
        r"cannula\w*",
        r"hardware",
    ),
}

# Phrases that contain a mention but mean something else ("pericardial effusion").
UNMENTIONS: dict[str, tuple[str, ...]] = {
    "lung_opacity": (
        r"pleural (?:scar\w*|[a-z]+ opaci\w*)",
        r"pleural[- ]parenchymal scar\w*",
        r"pleuroparenchymal scar\w*",
        r"scarring of the pleura",
    ),
    "lung_lesion": (
        r"calcified (?:\w+ )?nodul\w*",
        r"nodular calcification\w*",
        r"massive\w*",
        r"(?:soft tissue|breast|mediastinal|hilar|neck|thyroid|abdominal|pericardial|pleural"
        r"|chest wall|cardiac|paratracheal|retrocardiac soft tissue) mass(?:es)?",
    ),
    "pleural_effusion": (r"pericardial effusion\w*",),
    "pneumonia": (
        r"granulomatous (?:\w+ )?(?:infection|disease)",
        r"(?:prior|old|previous|remote|healed) (?:\w+ )?infection",
    ),
    "atelectasis": (r"(?:vertebral|compression|body|height) collapse\w*",),
    "support_devices": (
        r"(?:mid|midclavicular|azygos|fissural?|pleural|skin|nipple|fracture) lines?",
        r"line of (?:the )?\w+",
        r"(?:sternotomy|surgical) (?:wires?|clips?)",
        r"tube(?:rcul\w+|rosit\w+)",
        r"drainage",
        # the shape of discoid atelectasis, not an orthopaedic plate: "plate-like", "plate
        # atelectasis"; Kerley B lines are interstitial lines; "leads to" is a verb
        r"plate[- ]?(?:like|atelecta\w*|opacit\w*|scar\w*)",
        r"kerley (?:b )?lines?",
        r"scapular? tips?",
        r"(?:b|septal|interstitial)[- ]lines?",
        r"(?<!pacer )(?<!pacing )(?<!pacemaker )leads? to",
    ),
}

# --- Attribute mentions: an anatomical anchor qualified by a normal / abnormal word. ---
# "heart size is normal" is a negative mention of cardiomegaly and "the heart is enlarged" a
# positive one, wherever the qualifier sits relative to the anchor (within the window).
ANCHORS: dict[str, str] = {
    "cardiomegaly": (
        r"(?:heart|cardiac) (?:size|silhouette|shadow|contour|contours|diameter)"
        r"|cardiac|heart"
    ),
    "enlarged_cardiomediastinum": (
        r"(?:cardio)?mediastin\w* (?:silhouette|contour|contours|size|shadow|width|structures)"
        r"|mediastinum"
    ),
    "edema": r"(?:pulmonary |lung )?(?:vascularity|vasculature|vascular markings|vessels)",
}
ATTR_POSITIVE = (
    r"enlarge\w*",
    r"large",
    r"(?:mild|moderate|marked|severe|significant)? ?increased",
    r"widened",
    r"congest\w*",
    r"engorge\w*",
    r"indistinct\w*",
    r"cephaliz\w*",
    r"prominen\w*",
)
ATTR_UNCERTAIN = (r"borderline(?: enlarged)?", r"mildly prominent", r"top[- ]normal")
ATTR_NORMAL = (
    r"normal",
    r"within (?:normal limits|(?:the )?limits of normal)",
    r"(?:at |within )?(?:the )?upper limits? of normal",
    r"unremarkable",
    r"not enlarged",
    r"negative",
)

# --- Context cues (CheXpert's three stages, in its order of precedence). ---
# Stage 1: negated phrases that still mean "uncertain" ("cannot exclude", "no new").
PRE_NEG_UNCERTAIN = (
    r"cannot (?:be )?(?:excluded?|ruled? out)",
    r"can ?not (?:be )?(?:excluded?|ruled? out)",
    r"could not (?:be )?(?:excluded?|ruled? out)",
    r"(?:not|difficult to|unable to) (?:entirely |completely |definitely )?(?:exclude|rule out)",
    r"r/o",
    r"rule out",
    r"to (?:exclude|rule out|evaluate for)",
    r"(?:evaluat\w*|assess\w*) for",
)
POST_NEG_UNCERTAIN = (
    r"(?:is|are|be|was|were)? ?not (?:entirely |completely |definitely )?(?:excluded|ruled out)",
    r"(?:cannot|can not|could not) (?:be )?(?:entirely |completely )?(?:excluded|ruled out)",
)
# Stage 2: negation.
PRE_NEGATION = (
    r"no",
    r"not",
    r"without",
    r"negative for",
    r"free of",
    r"clear of",
    r"absence of",
    r"absent",
    r"resolution of",
    r"resolved",
    r"removal of",
    r"rather than",
    r"no (?:evidence|signs?|findings?) (?:of|for|to suggest)",
    r"history of",
    r"nor",
    r"never",
)
POST_NEGATION = (
    r"(?:is|are|was|were|has|have)? ?(?:not|no longer) "
    r"(?:\w+ )?(?:seen|identified|present|visualized|visible|appreciated|demonstrated|evident"
    r"|noted|detected|apparent|shown|observed)",
    r"(?:is|are|was|were|has|have)? ?(?:not|no longer) (?:been )?"
    r"(?:seen|identified|present|visualized|appreciated|demonstrated|noted)",
    r"(?:is|are|has|have)? ?(?:since )?(?:been )?(?:resolved|removed|cleared)",
    r"(?:is|are) absent",
    r"(?:is|are) negative",
    r"(?:is|are|appears?)? ?within (?:normal limits|(?:the )?limits of normal)",
)
# Pseudo-negations: contain a negation word but do not negate what follows.
PSEUDO_NEGATION = (
    r"no (?:significant |interval |substantial |appreciable )*(?:change|increase|decrease)\w*",
    r"not (?:significantly |substantially )?(?:changed|increased|decreased|only)",
    r"no longer (?:demonstrates?|shows?)",
    r"without (?:significant |interval )?change\w*",
    r"gram negative",
    r"not well (?:seen|visualized)",
)
# Stage 3: uncertainty (hedges), before or after the mention.
PRE_UNCERTAIN = (
    r"may",
    r"might",
    r"could",
    r"would",
    r"possibl[ey]",
    r"possibility of",
    r"probable",
    r"presumabl[ey]",
    r"presumed",
    r"question(?:able|ably)?",
    r"questioned",
    r"suspect\w*",
    r"suspicious(?: for)?",
    r"suspicion (?:of|for)",
    r"suggestion of",
    r"concern(?:ing)? (?:for|of)",
    r"worrisome (?:for|of)",
    r"differential",
    r"favou?r\w*",
    r"equivocal",
    r"indeterminate",
    r"versus",
    r"vs",
    r"either",
    r"correlat\w* (?:\w+ )?(?:for|as to)",
    r"considerations?",
    r"if",
)
POST_UNCERTAIN = (
    r"(?:is|are|was|were)? ?(?:also |more |less )?(?:possible|possibly|less likely|probable"
    r"|suspected|questioned|considered|a consideration|not excluded)",
    r"(?:versus|vs|or)",
    r"(?:is|are) (?:a )?(?:concern|possibility|differential)",
    r"(?:is|are) favored",
    r"(?:may|might|could|can) (?:also )?be (?:present|seen|noted)",
    r"(?:is|are|would be) (?:also )?(?:a |another )?(?:consideration|possibility)",
    r"(?:is|are) in the differential",
)
# Words that end the scope of a cue ("no effusion, but there is consolidation"). Hard breaks
# end it on both sides of a mention; soft breaks (interpretive links such as "consistent
# with", which are often cues themselves) only end the scope of cues *before* a mention.
HARD_BREAKS = (
    r"but",
    r"however",
    r"although",
    r"though",
    r"whereas",
    r"which",
    r"except",
    r"apart from",
    r"aside from",
    r"other than",
    r"otherwise",
    r"there (?:is|are|has|have)",
    r"with (?:a|an|the|some|mild|minimal|small|moderate|large|new|left|right|bilateral)",
    r"and (?:a|an|the|mild|minimal|small|moderate|large|new|stable|left|right|bilateral)",
)
SOFT_BREAKS = (
    r"consistent with",
    r"compatible with",
    r"concerning for",
    r"(?<!to )suggest\w*",
    r"likely",
    r"may",
    r"could",
    r"due to",
    r"secondary to",
    r"related to",
    r"representing",
    r"represents?",
)

# --- No Finding: other abnormalities that, positive or uncertain, rule out "No Finding". ---
# CheXpert's own list (phrases/mention/no_finding.txt) plus close synonyms; these set no label.
# Each entry is an alternation of several phrases, to keep the long list compact.
OTHER_FINDINGS = (
    r"emphysema\w*|copd|chronic obstructive|blunt\w*|densit(?:y|ies)|elevat\w*|eventration",
    r"scoliosis|kyphosis|degenera\w*|spondylo\w*|osteophyt\w*|calcifi\w*|granulom\w*",
    r"hyperinflat\w*|hyperexpan\w*|hyperaera\w*|hyperlucen\w*|overinflat\w*",
    r"(?:low|decreased|reduced) (?:lung )?volumes?|hypoinflat\w*|hernia\w*|bronch\w*|asthma",
    r"plaque\w*|atherosclero\w*|tortu\w*|ectatic|aneurysm\w*|bullae|bullous|blebs?|cysts?",
    r"cystic|fibrosis|fibrotic|cavit\w*|thickening|aspiration|contusion|osteopeni\w*",
    r"osteoporo\w*|metasta\w*|pneumomediastinum|pneumoperitoneum",
    r"subcutaneous (?:emphysema|air)|inflam\w*|hypertension|volume loss|deformit\w*",
    r"hemorrhag\w*|hematoma|arthrit\w*|arthropath\w*|sclero\w*|lucenc\w*|hyperostosis|dish",
    r"(?:interstitial|lung|pulmonary|bronchovascular) markings",
    r"chronic (?:lung|interstitial|changes)|sarcoid\w*|tuberculosis|lymphadenopathy",
    r"adenopathy|mastectomy|pneumonectomy|lobectomy|wedge resection|resection|sternotomy",
    r"cabg|clips?|wires?|stents?|foreign bod\w*|shift\w*",
)
