"""Privacy by design (issue 22): what a monitoring run may keep of the people it sees.

Three levels, one per run:

* ``off``    -- everything as before (the default for plain detection, which follows no one);
* ``blur``   -- every face the model found is blurred in every image that leaves the process, before
               it is written or sent; no face crop is written (the default whenever people are monitored);
* ``counts`` -- France's decree 2021-269: no image, video, crop or per-person row is written or sent,
               only counts by verdict and the share wearing a mask, per period.

``--retain`` deletes the outputs of monitoring runs once they are older than a duration.
This package only imports numpy and OpenCV: detect.py --help stays light.
Its settings (levels, margin, durations and their parsing) live with every other setting, in maskdet.settings
(PrivacySettings); the stage that runs it each frame is maskdet.pipeline.privacy.
"""
