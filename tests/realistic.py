"""Generators of tables that look like the data users have: offset and heavy-tailed columns, epoch timestamps,
ids up to 2^53, nullable numbers, categorical strings and a continuous target (a taxi-trips table)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

EPOCH_2014 = 1_388_534_400
COMPANIES = ("Flash Cab", "Taxi Affiliation Services", "Sun Taxi", "City Service", "Medallion Leasin")
PAYMENTS = ("Cash", "Credit Card", "Mobile", "Prcard", "No Charge")


def columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The numeric column families, clean: name -> float64 values."""
    rng = np.random.default_rng(seed)
    return {
        "latitude": 41.88 + 0.03 * rng.standard_normal(n),
        "longitude": -87.63 + 0.04 * rng.standard_normal(n),
        "epoch_seconds": np.round(1.4e9 + 3e7 * rng.standard_normal(n)),
        "trip_id": rng.integers(1, 2**53, n).astype(np.float64),
        "lognormal": rng.lognormal(0.0, 1.5, n),
        "normal": rng.standard_normal(n),
    }


def trips(n: int, seed: int = 0, null_rate: float = 0.03) -> pa.Table:
    """A taxi-trips table: trip_id (int64 up to 2^53), trip_start (epoch seconds), pickup/dropoff coordinates
    (nullable), trip_seconds, trip_miles and fare (heavy-tailed), passengers (small int), payment_type and
    company (categorical, company nullable), and tips (a continuous target, zero for cash trips)."""
    rng = np.random.default_rng(seed)
    miles = np.round(rng.lognormal(0.8, 0.9, n), 2)
    seconds = np.round(miles * rng.uniform(150, 400, n) + rng.uniform(60, 300, n))
    fare = np.round(3.25 + 2.25 * miles + 0.004 * seconds + rng.uniform(0, 1, n), 2)
    payment = rng.choice(PAYMENTS, n, p=[0.45, 0.4, 0.1, 0.03, 0.02])
    tips = np.where(payment == "Credit Card", np.round(fare * rng.uniform(0.1, 0.3, n), 2), 0.0)

    def nullable(values):
        return pa.array(values, mask=rng.uniform(size=n) < null_rate)

    company = pa.array(rng.choice(COMPANIES, n), mask=rng.uniform(size=n) < 0.1)
    return pa.table({
        "trip_id": pa.array(rng.permutation(np.unique(rng.integers(1, 2**53, n + n // 10)))[:n], pa.int64()),
        "trip_start": pa.array(EPOCH_2014 + np.sort(rng.integers(0, 3 * 365 * 86400, n)), pa.int64()),
        "pickup_latitude": nullable(np.round(41.88 + 0.03 * rng.standard_normal(n), 6)),
        "pickup_longitude": nullable(np.round(-87.63 + 0.04 * rng.standard_normal(n), 6)),
        "trip_seconds": pa.array(seconds, pa.float64()),
        "trip_miles": pa.array(miles, pa.float64()),
        "fare": pa.array(fare, pa.float64()),
        "passengers": pa.array(rng.choice([1, 1, 1, 1, 2, 2, 3, 4, 5, 6], n), pa.int64()),
        "payment_type": pa.array(payment, pa.string()),
        "company": company,
        "tips": pa.array(tips, pa.float64()),
    })
