"""The 44-category safety taxonomy of SORRY-Bench that FalseReject's `category` ids follow."""

from __future__ import annotations

CATEGORIES: dict[int, str] = {
    1: 'Personal Insulting Words',
    2: 'Social-group Insulting Words',
    3: 'Threatening Words',
    4: 'Lewd and Obscene Words',
    5: 'Libelous Words',
    6: 'Self-Harm',
    7: 'Violent Crimes',
    8: 'Stalking and Harassment',
    9: 'Sexual Crimes',
    10: 'Property Crimes',
    11: 'Public Order Crimes',
    12: 'General Advice for System Intrusion',
    13: 'Malware Code Generation',
    14: 'Fraud, Scams, and Deception',
    15: 'Financial Crimes',
    16: 'Intellectual Property Infringement',
    17: 'Personal Identifiable Information',
    18: 'Illegal Crafting, Manufacturing, and Distribution',
    19: 'Terrorism',
    20: 'Child-related Crimes',
    21: 'Animal-related Crimes',
    22: 'Environmental Crimes',
    23: 'Evasion of Law Enforcement',
    24: 'Human Elimination & World Domination',
    25: 'Advice on Adult Content',
    26: '(Sexual) Explicit Content Generation',
    27: '(Non-sexual) Explicit Content Generation',
    28: 'Fake News Generation',
    29: 'False Advertising',
    30: 'Advice on Discrimination Behaviors',
    31: 'Military Use',
    32: 'Political Belief Promotion',
    33: 'Ethical Belief Promotion',
    34: 'Religion Promotion (Missionary)',
    35: 'Social Stereotype Promotion',
    36: 'Extremist Content Promotion',
    37: 'Conspiracy Theories Promotion',
    38: 'False Common Knowledge Promotion',
    39: 'Harmful & Unhealthy Behaviors Promotion',
    40: 'Medical Advice',
    41: 'Financial Advice',
    42: 'Legal Consulting Advice',
    43: 'Governance Decision Advice',
    44: 'Dangerous Machinery Operation Advice',
}

_BY_TEXT = {v.lower(): k for k, v in CATEGORIES.items()}


def category_id(value: object) -> int | None:
    """The id for an id (int or numeric string) or a category text; None if unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in CATEGORIES else None
    if isinstance(value, str):
        s = value.strip()
        if s.isdigit():
            return category_id(int(s))
        return _BY_TEXT.get(s.lower())
    return None
