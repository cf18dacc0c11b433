"""The paper's reference figures, as data.

Source: Peng et al., "Shrinking Bigfoot: Reducing wav2vec 2.0 footprint" (SustaiNLP 2021,
https://aclanthology.org/2021.sustainlp-1.14): Table 1, Table 2, Table 3, section 7 (extrapolation) and
section 2.2 (pruning).  All of the paper's timings and energies are over LibriSpeech dev-clean (section 6;
2703 utterances, about 5.4 h); ``None`` marks a figure the paper does not give ("N/A" in Table 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# Authors as listed by the ACL Anthology (2021.sustainlp-1.14).
CITATION = ('Peng, Budhkar, Tuil, Levy, Sobhani, Cohen, Nassour: "Shrinking Bigfoot: Reducing wav2vec 2.0 '
            'footprint", SustaiNLP 2021, pp. 134-141')

# The paper's test set: dev-clean (section 6), "5.4 hours" (section 7); 2703 utterances is dev-clean's own count
# (one transcript line per utterance in the OpenSLR archive).
DEV_CLEAN_HOURS = 5.4
DEV_CLEAN_UTTERANCES = 2703


@dataclass(frozen=True)
class PaperModel:
    """One row of the paper's Table 1."""

    name: str
    recipe: str                 # our recipe that reproduces it
    params_m: float             # millions of parameters
    size_mb: float
    cpu_s: Optional[float]      # inference time over dev-clean, batch 1, FLAC decoding included
    gpu_s: Optional[float]
    wer_pct: float
    co2_kg: Optional[float]     # CodeCarbon estimate over the GPU run
    energy_kwh: Optional[float]
    transformer_layers: int = 24


# The paper's Table 1.
TABLE1: tuple[PaperModel, ...] = (
    PaperModel("Original (24 layers)", "baseline", 317, 1262, 4433, 123, 2.63, 0.0032, 0.0087, 24),
    PaperModel("Distilled (4 layers)", "distill-L4", 65, 262, 1560, 51, 9.51, 0.0013, 0.0036, 4),
    PaperModel("Quantized (int8 dynamic)", "int8-dynamic", 317, 354, 4079, None, 2.75, None, None, 24),
)


@dataclass(frozen=True)
class PaperDepth:
    """One row of Table 2: students of the 24-layer model, trained 10 epochs on train-clean-100, timed on GPU."""

    layers: int
    params_m: float
    size_mb: float
    gpu_s: float
    wer_pct: float

    @property
    def fraction(self) -> float:
        """Kept fraction of the teacher's 24 transformer layers (how we line up a shallower teacher's sweep)."""
        return self.layers / TEACHER_LAYERS


TEACHER_LAYERS = 24

# The paper's Table 2 (section 7.1).
TABLE2: tuple[PaperDepth, ...] = (
    PaperDepth(24, 317, 1262, 123, 2.63),
    PaperDepth(12, 166, 665, 81, 6.6),
    PaperDepth(10, 141, 564, 75, 7.59),
    PaperDepth(8, 115, 464, 69, 10.42),
    PaperDepth(6, 91, 363, 60, 16.54),
)


@dataclass(frozen=True)
class PaperConv:
    """One row of Table 3: 7 conv layers vs 4 (3 replaced by max-pooling); the paper gives no WER here."""

    conv_layers: int
    gpu_s: float
    cpu_s: float


# The paper's Table 3 (section 7.1).  Note the CPU got SLOWER with max-pooling.
TABLE3: tuple[PaperConv, ...] = (PaperConv(7, 2.97, 161), PaperConv(4, 2.26, 387))


@dataclass(frozen=True)
class PaperExtrapolation:
    """Section 7: CO2 saved by the distilled model on dev-clean, scaled to 54 million hours of speech."""

    co2_saved_kg: float = 0.0019        # 0.0032 - 0.0013 kg (Table 1)
    energy_saved_kwh: float = 0.0051    # 0.0087 - 0.0036 kWh (Table 1; the paper does not scale energy)
    test_hours: float = DEV_CLEAN_HOURS
    target_hours: float = 54e6
    stated_t: float = 21.0              # "it's possible to save ~21 tons of CO2 equivalents"

    @property
    def computed_t(self) -> float:
        """The paper's own arithmetic: 0.0019 / 5.4 x 54e6 kg = about 19 t (not the 21 t it states)."""
        return self.co2_saved_kg / self.test_hours * self.target_hours / 1000.0

    @property
    def implied_carbon_intensity_g_per_kwh(self) -> float:
        """Table 1's CO2 / energy: about 368 g/kWh for the original model (CodeCarbon's default grid mix)."""
        return 0.0032 / 0.0087 * 1000.0

    @property
    def formula(self) -> str:
        return (f"{self.co2_saved_kg} kg / {self.test_hours} h x {self.target_hours:.3g} h "
                f"= {self.computed_t:.1f} t (paper states about {self.stated_t:.0f} t)")


EXTRAPOLATION = PaperExtrapolation()

# Section 2.2: Distiller sensitivity pruner (conv 0.1; transformer layers 3-16 at 0.3, 17-23 at 0.4).
PRUNING_NOTE = "23 % sparsity, same WER as the original, no significant speed-up (section 2.2)"

# Section 7: energy estimated with CodeCarbon.  Table 1's energy / GPU time is the same for both models
# (0.0087 kWh / 123 s = 255 W, 0.0036 kWh / 51 s = 254 W): a constant-power estimate, not a measurement.
PAPER_ENERGY_METHOD = ("CodeCarbon (section 7); a constant-power estimate: Table 1's energy / GPU time is "
                       "about 254 W for both models")


def table1_by_recipe() -> dict[str, PaperModel]:
    return {m.recipe: m for m in TABLE1}
