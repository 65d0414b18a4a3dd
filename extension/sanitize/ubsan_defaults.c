/* Compiled into the sanitizer build of the extension only (make SANITIZE=...). With gcc, UBSan
 * lives in libubsan and initialises lazily at its first report, inside a backend; it then reads
 * UBSAN_OPTIONS from /proc/self/environ, which Postgres has overwritten with the process title
 * by then, so options from the postmaster's environment are ignored. These are built in. */
__attribute__((visibility("default"))) const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void) {
  return "print_stacktrace=1:halt_on_error=1:abort_on_error=1";
}
