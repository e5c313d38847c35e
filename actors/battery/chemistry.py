"""Battery chemistries: open-circuit voltage against state of charge, and how temperature moves both.

The simulator and the forecast share these tables, so a forecast inverts the same nominal curve the
cells were drawn from; individual cells still differ (capacity, a few mV of offset) and the forecast
does not know by how much. Voltages are at a light load and 25 °C; ``tempco_v_per_c`` shifts the
whole curve (cold cells read lower), which is why a cell in a cold night reaches its cutoff first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import BatteryError


@dataclass(frozen=True, slots=True, kw_only=True)
class Chemistry:
    """One battery type: its curve, its cutoff, the voltages a reading can plausibly have, its temperature habits."""

    name: str
    nominal_v: float
    cutoff_v: float  # the device browns out below this
    min_valid_v: float  # a reading outside [min_valid_v, max_valid_v] is garbage, not a battery
    max_valid_v: float
    capacity_mah: float
    soc_points: tuple[float, ...]  # increasing state of charge, 0..1
    ocv_points: tuple[float, ...]  # volts at 25 °C, strictly increasing with soc
    tempco_v_per_c: float
    self_discharge_per_year: float  # fraction of capacity at 25 °C, doubling every 10 °C
    cold_drain_per_c: float  # extra effective drain per °C below 10 °C (usable capacity shrinks in the cold)

    def voltage(self, soc: ArrayLike, temp_c: ArrayLike) -> NDArray[np.float64]:
        """Voltage at a state of charge and temperature."""
        v = np.interp(np.asarray(soc, dtype=np.float64), self.soc_points, self.ocv_points)
        return v + self.tempco_v_per_c * (np.asarray(temp_c, dtype=np.float64) - 25.0)

    def soc(self, voltage: ArrayLike, temp_c: ArrayLike) -> NDArray[np.float64]:
        """State of charge a voltage means at a temperature (the inverse of :meth:`voltage`, clipped to 0..1)."""
        v25 = np.asarray(voltage, dtype=np.float64) - self.tempco_v_per_c * (
            np.asarray(temp_c, dtype=np.float64) - 25.0
        )
        return np.interp(v25, self.ocv_points, self.soc_points)


CHEMISTRIES: dict[str, Chemistry] = {
    c.name: c
    for c in (
        # Li-SOCl2 bobbin cell (ER14505-like): a long, nearly flat plateau, then a sharp knee.
        Chemistry(
            name="lisocl2",
            nominal_v=3.6,
            cutoff_v=3.2,
            min_valid_v=1.5,
            max_valid_v=3.9,
            capacity_mah=2600.0,
            soc_points=(0.0, 0.02, 0.05, 0.10, 0.20, 0.50, 0.80, 1.0),
            ocv_points=(2.80, 3.05, 3.30, 3.42, 3.50, 3.56, 3.61, 3.67),
            tempco_v_per_c=0.002,
            self_discharge_per_year=0.01,
            cold_drain_per_c=0.004,
        ),
        # Two alkaline AA cells in series: a steadily sloping curve, poor in the cold.
        Chemistry(
            name="alkaline_2aa",
            nominal_v=3.0,
            cutoff_v=2.2,
            min_valid_v=0.5,
            max_valid_v=3.4,
            capacity_mah=2500.0,
            soc_points=(0.0, 0.05, 0.20, 0.50, 0.80, 1.0),
            ocv_points=(1.80, 2.00, 2.30, 2.50, 2.75, 3.10),
            tempco_v_per_c=0.003,
            self_discharge_per_year=0.03,
            cold_drain_per_c=0.012,
        ),
        # Li-ion 18650: 4.2 V full, sloping; installed charged, sometimes recharged in the field.
        Chemistry(
            name="liion",
            nominal_v=3.7,
            cutoff_v=3.3,
            min_valid_v=2.0,
            max_valid_v=4.35,
            capacity_mah=3000.0,
            soc_points=(0.0, 0.05, 0.10, 0.30, 0.50, 0.70, 0.90, 1.0),
            ocv_points=(3.00, 3.40, 3.55, 3.70, 3.78, 3.90, 4.05, 4.20),
            tempco_v_per_c=0.001,
            self_discharge_per_year=0.25,
            cold_drain_per_c=0.006,
        ),
    )
}
CHEMISTRY_NAMES: tuple[str, ...] = tuple(CHEMISTRIES)


def chemistry(name: str) -> Chemistry:
    """The chemistry called ``name``; a :class:`BatteryError` naming the known ones otherwise."""
    try:
        return CHEMISTRIES[name]
    except KeyError:
        raise BatteryError(f"chemistry: expected one of {', '.join(CHEMISTRY_NAMES)}, got {name!r}") from None
