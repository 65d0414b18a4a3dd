/* Preloaded right after libasan into a Postgres server that loads the sanitizer build of the
 * extension (tests/run.sh, regress-asan). Linked with -z initfirst, so its constructor runs
 * before every other one and initialises ASan eagerly. Without it ASan initialises lazily on the
 * first malloc, which happens inside libgpg-error's constructor (postgres -> libsystemd ->
 * libgcrypt) while bindtextdomain() holds glibc's _nl_state_lock; ASan's start-up then calls
 * dlerror() -> dcgettext(), which corrupts that lock, and `postgres -V` hangs. */
extern void __asan_init(void) __attribute__((weak));
__attribute__((constructor)) static void asan_initfirst(void) {
  if (__asan_init) __asan_init();
}
