#!/bin/sh
# Runs from the *previous* revision before the new one is installed.
echo "stopping revision ${SHOAL_REVISION} (deployment ${DEPLOYMENT_ID})"
