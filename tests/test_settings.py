"""maskdet.settings: every default written once, in the dataclasses; the scripts' flags read them."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from maskdet.cli.detect import build_parser as detect_parser
from maskdet.cli.prelabel import build_parser as prelabel_parser
from maskdet.cli.serve import build_parser as serve_parser
from maskdet.data.prelabel import PRELABEL_CONF
from maskdet.errors import UserError
from maskdet.inference.detectors import DetectSettings as DetectorsDetectSettings
from maskdet.monitoring.people import ALERT_AFTER_S, MIN_FRAMES, MonitorSettings
from maskdet.settings import (
    PERIOD_RANGE,
    PRIVACY_PREFIX,
    DetectionSettings,
    DetectSettings,
    MonitoringSettings,
    PrivacySettings,
    ServeSettings,
    Settings,
    default_of,
    parse_duration,
)


def normalised(flat: dict) -> dict:
    return {k: str(Path(v)) if k == "project" else v for k, v in flat.items()}


def test_detect_py_defaults_are_the_settings_defaults():
    args = vars(detect_parser().parse_args([]))
    defaults = {k: v for k, v in Settings().flat().items() if k != PRIVACY_PREFIX + "blur_margin"}  # no flag for it
    assert normalised(args) == normalised(defaults)


def test_every_detect_py_flag_is_a_setting():
    assert set(vars(detect_parser().parse_args([]))) <= set(Settings.flat_names())


def test_serve_py_defaults_are_serve_settings_defaults():
    args = vars(serve_parser().parse_args([]))
    for f in fields(ServeSettings):
        if f.name in args and f.name not in ("weights", "token"):  # weights: the shipped model; token: $MASKDET_TOKEN
            assert args[f.name] == default_of(ServeSettings, f.name), f.name
    assert default_of(ServeSettings, "conf") == DetectionSettings.conf and default_of(ServeSettings, "iou") == DetectionSettings.iou


def test_prelabel_py_conf_default_is_the_labelling_threshold():
    assert prelabel_parser().parse_args(["--images", "x"]).conf == PRELABEL_CONF


def test_the_detector_and_the_people_stage_use_the_same_defaults():
    assert DetectorsDetectSettings is DetectSettings
    assert DetectionSettings().finding() == DetectSettings()
    assert (MonitoringSettings().min_frames, MonitoringSettings().alert_after) == (MIN_FRAMES, ALERT_AFTER_S)
    assert (MonitorSettings().min_frames, MonitorSettings().alert_after) == (MIN_FRAMES, ALERT_AFTER_S)


def test_flat_keywords_land_in_their_sections_and_back():
    s = Settings.from_flat(source="clip.mp4", conf=0.4, classes=[1, 2], track=True, save_csv=True, privacy_level="blur")
    assert s.source.source == "clip.mp4" and s.detection.conf == 0.4 and s.monitoring.track and s.output.save_csv
    assert s.detection.classes == [1, 2] and s.detection.finding().classes is None and s.privacy.level == "blur"
    assert Settings.from_flat(**s.flat()) == s


def test_an_unknown_keyword_is_refused():
    with pytest.raises(TypeError, match="no_such"):
        Settings.from_flat(no_such=1)


def test_monitoring_is_on_with_any_of_track_line_or_alert():
    assert not MonitoringSettings().enabled
    assert MonitoringSettings(track=True).enabled and MonitoringSettings(line="0,0.5,1,0.5").enabled
    assert MonitoringSettings(alert=["without_mask"]).enabled


def test_privacy_is_blur_when_monitoring_else_off_and_range_checked():
    assert PrivacySettings() == PrivacySettings(level=None, blur_margin=0.25, retain=None, period=None)
    assert PrivacySettings().resolved(monitoring=True) == "blur" and PrivacySettings().resolved(monitoring=False) == "off"
    assert PrivacySettings(retain="72h").retain_s == 259200 and PrivacySettings().period_s == 1200
    for bad in (PrivacySettings(level="hide"), PrivacySettings(blur_margin=-0.1), PrivacySettings(blur_margin=2),
                PrivacySettings(retain=0), PrivacySettings(period=0), PrivacySettings(retain="72 hours")):
        with pytest.raises(UserError):
            bad.check()


@pytest.mark.parametrize("text, seconds", [("3600", 3600), ("90", 90), (" 1.5 ", 1.5), ("72h", 259200)])
def test_a_duration_is_a_number_of_seconds_or_a_number_and_a_unit_as_parse_duration_says(text, seconds):
    assert parse_duration(text, "--retain") == seconds
    assert PrivacySettings(retain=text).retain_s == seconds


@pytest.mark.parametrize("text, seconds", [("120", 120), ("150s", 150), ("20m", 1200), ("1.5h", 5400), ("7d", 604800)])
def test_a_period_of_counts_is_whole_seconds_from_two_minutes_to_a_week_as_in_monitor_py(text, seconds):
    assert PrivacySettings(period=text).period_s == seconds


@pytest.mark.parametrize("text", ["1s", "90", "119", "150.5", "8d", "20 minutes", 119.9999999, 604800.4, float("nan")])
def test_a_period_of_counts_under_two_minutes_or_over_a_week_is_one_line_naming_the_range(text):
    with pytest.raises(UserError) as refused:
        PrivacySettings(period=text).check()
    assert str(refused.value) in (f"--period must be {PERIOD_RANGE}, in whole seconds, not {text}",
                                  f"--period must be a number and a unit (s, m, h or d), such as 72h or 20m, not {text!r}")


def test_detect_py_takes_retain_in_plain_seconds():
    assert detect_parser().parse_args(["--track", "--retain", "3600"]).privacy_retain == "3600"
    assert PrivacySettings(retain="3600").retain_s == 3600
