#!/bin/sh
# Entry point of the crasher test image: runs for a second, then fails with
# exit code 3, for restart and back-off tests.
echo "crasher started; exiting with code 3 in 1s"
sleep 1
exit 3
