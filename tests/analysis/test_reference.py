from pathlib import Path

import pytest
import yaml

from losslandscapes.analysis.tables import reference_values

SHARED = Path(__file__).resolve().parents[3] / "shared" / "paper" / "reference-values.yaml"


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/paper not beside this checkout")
def test_shipped_reference_values_equal_the_published_transcription():
    assert reference_values() == yaml.safe_load(SHARED.read_text())
