"""Label sets: PIDRay's 12 threat categories and the paper's part sets (Table A1). Id 0 is background."""

from __future__ import annotations

from dataclasses import dataclass

from baggan.errors import UserError


@dataclass(frozen=True)
class LabelSet:
    """An ordered set of labels; `names[i]` is the label with id i+1 (0 = background, implicit)."""

    name: str
    names: tuple[str, ...]
    low_frequency: tuple[str, ...] = ()  # labels absent from most images (precision@IoU is reported for them)

    @property
    def num_classes(self) -> int:
        """Number of classes including background."""
        return len(self.names) + 1

    def id_of(self, name: str) -> int:
        """Category id of `name` (case-insensitive); UserError if unknown."""
        lowered = [n.lower() for n in self.names]
        if name.lower() not in lowered:
            raise UserError(f"unknown label {name!r} for label set {self.name} (known: {', '.join(self.names)})")
        return lowered.index(name.lower()) + 1

    def coco_categories(self) -> list[dict]:
        """COCO `categories` records (ids 1..K-1)."""
        return [{"id": i + 1, "name": n, "supercategory": self.name} for i, n in enumerate(self.names)]


PIDRAY = LabelSet(
    "pidray",
    ("Baton", "Pliers", "Hammer", "Powerbank", "Scissors", "Wrench", "Gun", "Bullet", "Sprayer", "HandCuffs",
     "Knife", "Lighter"),
    low_frequency=("Baton", "Pliers", "Hammer", "Powerbank", "Scissors", "Wrench", "Gun", "Bullet", "Sprayer",
                   "HandCuffs", "Knife", "Lighter"),
)
# The paper's five BagGAN categories (section 8.2, Table 6).
PAPER_THREATS = ("Hammer", "HandCuffs", "Pliers", "Powerbank", "Wrench")

FACE = LabelSet(
    "face",
    ("skin", "hair", "eyebrow", "nose", "eye", "mouth", "ear", "eye_g", "teeth", "cloth"),
    low_frequency=("eye_g", "teeth", "cloth"),
)
# The paper's training set for faces (Table A1): {background, skin, hair, eyebrow, nose, eye, mouth, ear}; same ids
# as the first seven of FACE, which adds the low-frequency labels of section 7 (Table 4).
FACE8 = LabelSet("face8", FACE.names[:7])
CAR = LabelSet("car", ("body", "door", "window", "windshield", "wheel", "lights", "plate"), low_frequency=("plate",))
CAT = LabelSet("cat", ("head", "eye", "nose", "ear", "neck", "torso", "tail", "f_leg", "b_leg"))
HORSE = LabelSet("horse", ("leg", "saddle", "torso", "tail", "head", "rider"), low_frequency=("rider",))

LABEL_SETS = {ls.name: ls for ls in (PIDRAY, FACE, FACE8, CAR, CAT, HORSE)}


def get_label_set(name: str) -> LabelSet:
    """Look up a label set by name; UserError naming the choices if unknown."""
    if name not in LABEL_SETS:
        raise UserError(f"unknown label set {name!r} (known: {', '.join(LABEL_SETS)})")
    return LABEL_SETS[name]
