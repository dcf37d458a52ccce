# Every source file is as clang-format (14, .clang-format) would leave it. Skipped (77)
# when clang-format is not installed.
set -eu
: "${SOURCE_DIR:?}"
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then
  echo "SKIP: no clang-format" >&2
  exit 77
fi
cd "$SOURCE_DIR"
files=$(find src include tests -name '*.cpp' -o -name '*.hpp' | sort)
# shellcheck disable=SC2086
if ! "$cf" --dry-run --Werror $files; then
  echo "FAIL: the files above are not formatted: run 'cmake --build build -t format'" >&2
  exit 1
fi
