#!/bin/sh
# Fails the deployment unless the site is in place.
test -s /tmp/shoal-example/www/index.html || { echo "index.html missing" >&2; exit 1; }
echo "site is in place"
