"""Battery readings of a whole fleet as padded arrays: one row per device, one column per report slot.

Columnar because a forecast over 10,000 devices must be a few dozen numpy operations, not a loop per
reading. ``present`` says which slots hold a reading that arrived; what an arrived reading contains
is not trusted (NaN, negative, 0xFFFF mV all happen) and is sorted out by the forecast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .chemistry import chemistry
from .errors import BatteryError


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetHistory:
    """Recent battery reports of many devices (``ts_ms`` in ms since the epoch, UTC, stamped at measurement)."""

    devices: tuple[str, ...]
    chemistries: tuple[str, ...]  # one name per device, see chemistry.CHEMISTRIES
    ts_ms: NDArray[np.int64]  # (devices, slots)
    voltage: NDArray[np.float64]  # (devices, slots), volts as reported
    temp_c: NDArray[np.float64]  # (devices, slots), the device's own temperature at the same moment
    present: NDArray[np.bool_]  # (devices, slots), False where no reading arrived

    def __post_init__(self) -> None:
        n = len(self.devices)
        if len(self.chemistries) != n:
            raise BatteryError(f"chemistries: expected {n} names (one per device), got {len(self.chemistries)}")
        for i, name in enumerate(self.chemistries):
            try:
                chemistry(name)
            except BatteryError as e:
                raise BatteryError(f"chemistries[{i}]: {e}") from None
        shape = self.ts_ms.shape
        if len(shape) != 2 or shape[0] != n:
            raise BatteryError(f"ts_ms: expected shape ({n}, slots), got {shape}")
        for field in ("voltage", "temp_c", "present"):
            got = getattr(self, field).shape
            if got != shape:
                raise BatteryError(f"{field}: expected shape {shape} like ts_ms, got {got}")

    @classmethod
    def single(
        cls, device: str, chemistry_name: str, ts_ms: list[int], voltage: list[float], temp_c: list[float]
    ) -> FleetHistory:
        """One device's readings (lists of equal length) as a one-row history."""
        if not len(ts_ms) == len(voltage) == len(temp_c):
            raise BatteryError(
                f"{device}: ts_ms, voltage and temp_c must have one value per reading, "
                f"got {len(ts_ms)}, {len(voltage)}, {len(temp_c)}"
            )
        return cls(
            devices=(device,),
            chemistries=(chemistry_name,),
            ts_ms=np.asarray([ts_ms], dtype=np.int64).reshape(1, -1),
            voltage=np.asarray([voltage], dtype=np.float64).reshape(1, -1),
            temp_c=np.asarray([temp_c], dtype=np.float64).reshape(1, -1),
            present=np.ones((1, len(ts_ms)), dtype=np.bool_),
        )
