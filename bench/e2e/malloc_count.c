/* LD_PRELOAD shim for bench_e2e.py: counts calls to malloc, calloc and realloc.
 *
 * The count lives in a file mapped MAP_SHARED (path in $MALLOC_COUNT_FILE), so the bench reads
 * it at any moment by reading 8 bytes from that file: no signal handler, no thread, nothing that
 * could interfere with the process being measured. Calls made before the constructor ran (the
 * dynamic loader, earlier constructors) go to a private counter that is folded in once the file
 * is mapped. Every wrapper forwards to glibc's __libc_* entry points, so there is no dlsym()
 * bootstrap problem (dlsym itself allocates). free(), posix_memalign, aligned_alloc and memalign
 * are not counted (operator new and OpenSSL use malloc; aligned new is rare).
 *
 * Build: gcc -O2 -shared -fPIC -o malloc_count.so malloc_count.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t n, size_t size);
extern void* __libc_realloc(void* p, size_t size);

static uint64_t early_count;
static uint64_t* volatile shared_count; /* NULL until the constructor has mapped the file */

static inline void count_one(void)
{
    uint64_t* c = shared_count;
    __atomic_fetch_add(c ? c : &early_count, 1, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void malloc_count_init(void)
{
    const char* path = getenv("MALLOC_COUNT_FILE");
    if (!path || !*path)
        return;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (ftruncate(fd, 4096) != 0)
    {
        close(fd);
        return;
    }
    void* m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return;
    uint64_t* c = (uint64_t*)m;
    __atomic_store_n(c, __atomic_load_n(&early_count, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
    shared_count = c;
    /* Children (node's helpers, a shell) must not write into this file. */
    unsetenv("MALLOC_COUNT_FILE");
}

void* malloc(size_t size)
{
    count_one();
    return __libc_malloc(size);
}

void* calloc(size_t n, size_t size)
{
    count_one();
    return __libc_calloc(n, size);
}

void* realloc(void* p, size_t size)
{
    count_one();
    return __libc_realloc(p, size);
}
