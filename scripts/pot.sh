#!/usr/bin/env bash
# The mu-plugin's translation template: every string of wordpress/ marked for
# translation, with the translators' comments. Deterministic (no creation
# date, files in sorted order), so a test can tell when the committed copy
# is stale.
#   scripts/pot.sh [OUT]   (default: wordpress/closte-operator/languages/closte-operator.pot)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-wordpress/closte-operator/languages/closte-operator.pot}
command -v xgettext >/dev/null || { echo "xgettext is needed (apt-get install gettext)" >&2; exit 1; }
version=$(sed -n 's/^ \* Version: *//p' wordpress/closte-operator.php)
find wordpress -name '*.php' | LC_ALL=C sort | xgettext --files-from=- \
  --language=PHP --from-code=UTF-8 --add-comments=translators: --no-wrap --sort-by-file \
  --keyword=__ --keyword=_e --keyword=_n:1,2 --keyword=_x:1,2c --keyword=_nx:1,2,4c \
  --keyword=esc_html__ --keyword=esc_html_e --keyword=esc_attr__ --keyword=esc_attr_e \
  --keyword=esc_html_x:1,2c --keyword=esc_attr_x:1,2c \
  --package-name=closte-operator --package-version="$version" \
  --copyright-holder="the closte-operator authors" \
  --output=- |
  sed -e 's/^"POT-Creation-Date: .*\\n"$/"POT-Creation-Date: \\n"/' \
      -e 's/^"Content-Type: text\/plain; charset=CHARSET\\n"$/"Content-Type: text\/plain; charset=UTF-8\\n"/' \
      -e 's/^# SOME DESCRIPTIVE TITLE\.$/# Translation template of closte-operator (the WordPress mu-plugin)./' >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out: $(grep -c '^msgid "' "$out") strings"
