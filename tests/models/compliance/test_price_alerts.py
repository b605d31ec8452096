from decimal import Decimal

import pytest

from models.compliance.price_alerts import AlertBand, alert_band, median

BANDS = {"blue": Decimal("0.10"), "yellow": Decimal("0.20"), "red": Decimal("0.30")}


def test_the_reference_is_the_median_of_the_regions_prices() -> None:
    assert median([Decimal(3), Decimal(1), Decimal(2)]) == Decimal(2)
    assert median([Decimal(4), Decimal(1), Decimal(2), Decimal(3)]) == Decimal("2.5")
    with pytest.raises(ValueError):
        median([])


@pytest.mark.parametrize(("price", "band"), [
    ("109.99", None), ("110.00", AlertBand.BLUE), ("119.99", AlertBand.BLUE), ("120.00", AlertBand.YELLOW),
    ("129.99", AlertBand.YELLOW), ("130.00", AlertBand.RED), ("250.00", AlertBand.RED), ("90.00", None),
])
def test_purchase_prices_fall_in_red_yellow_and_blue_bands_above_the_median(price: str, band: AlertBand | None) -> None:
    assert alert_band(Decimal(price), Decimal("100.00"), **BANDS) == band
