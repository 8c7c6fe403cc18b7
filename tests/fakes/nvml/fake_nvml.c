/* A stand-in for libnvidia-ml.so.1, loaded by the real pynvml in tests and benches.
 *
 * It answers from a fixture file named in DS01_FAKE_NVML_FIXTURE (format:
 * docs/nvml.md) and re-reads that file whenever its inode, size or mtime changes
 * (checked on nvmlInit, nvmlDeviceGetCount and every process-list call), so one
 * long-running watcher sees processes come and go. Errors and hangs are injected per
 * exact C symbol name. Symbols that pynvml, gpustat or nvitop look up but that the
 * fixture cannot describe answer NVML_ERROR_NOT_SUPPORTED (stubs.c).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fake_nvml.h"

#define MAX_GPUS 16
#define MAX_MIG 8
#define MAX_PROCS 4096
#define MAX_RULES 64
#define MIB (1024ULL * 1024ULL)
#define NOT_AVAILABLE 0xFFFFFFFFFFFFFFFFULL
#define NO_INSTANCE 0xFFFFFFFFU
#define ANY (-1)
#define PARENT (-2)

enum { KIND_COMPUTE, KIND_GRAPHICS };
enum { MIG_NONE = -1, MIG_OFF = 0, MIG_ON = 1 };

struct handle {
    int gpu;
    int slot; /* PARENT for the GPU itself */
};

struct mig {
    int present;
    unsigned gi, ci;
    char uuid[96];
    char profile[48];
    unsigned long long memory;
};

struct gpu {
    char uuid[96];
    char name[96];
    unsigned long long memory;
    int mig_mode;
    unsigned max_mig;
    int lost;
    int parent_aggregate; /* the parent lists every MIG device's processes (root's view) */
    struct mig migs[MAX_MIG];
};

struct proc {
    unsigned pid;
    unsigned long long memory;
    int gpu, slot, kind;
};

struct rule {
    char symbol[96];
    int gpu, slot; /* ANY, or a GPU index and ANY / PARENT / a MIG slot */
    int code;      /* an error code, or -1 for a hang */
    int times;     /* grow rules: sizing calls still to undercount, -1 for always */
};

struct state {
    int ok;        /* 0: no usable fixture; calls answer `failure` */
    nvmlReturn_t failure;
    char driver[80], nvml[80];
    int cuda;
    int ngpus;
    struct gpu gpus[MAX_GPUS];
    int nprocs;
    struct proc procs[MAX_PROCS];
    int nrules;
    struct rule rules[MAX_RULES];
    int ngrow;
    struct rule grow[MAX_RULES]; /* code = how many the sizing call leaves out */
};

static struct state cur, next;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;
static struct stat seen;
static int seen_valid;
static struct handle parents[MAX_GPUS];
static struct handle migs[MAX_GPUS][MAX_MIG];

__attribute__((constructor)) static void make_handles(void) {
    for (int g = 0; g < MAX_GPUS; g++) {
        parents[g].gpu = g;
        parents[g].slot = PARENT;
        for (int s = 0; s < MAX_MIG; s++) {
            migs[g][s].gpu = g;
            migs[g][s].slot = s;
        }
    }
}

/* The one symbol only the fake exports: tests check it to know which library loaded. */
const char *ds01FakeNvmlVersion(void) { return "ds01-fake-nvml 1"; }

static const struct { const char *name; int code; } codes[] = {
    {"NVML_SUCCESS", NVML_SUCCESS},
    {"NVML_ERROR_UNINITIALIZED", NVML_ERROR_UNINITIALIZED},
    {"NVML_ERROR_INVALID_ARGUMENT", NVML_ERROR_INVALID_ARGUMENT},
    {"NVML_ERROR_NOT_SUPPORTED", NVML_ERROR_NOT_SUPPORTED},
    {"NVML_ERROR_NO_PERMISSION", NVML_ERROR_NO_PERMISSION},
    {"NVML_ERROR_ALREADY_INITIALIZED", NVML_ERROR_ALREADY_INITIALIZED},
    {"NVML_ERROR_NOT_FOUND", NVML_ERROR_NOT_FOUND},
    {"NVML_ERROR_INSUFFICIENT_SIZE", NVML_ERROR_INSUFFICIENT_SIZE},
    {"NVML_ERROR_INSUFFICIENT_POWER", NVML_ERROR_INSUFFICIENT_POWER},
    {"NVML_ERROR_DRIVER_NOT_LOADED", NVML_ERROR_DRIVER_NOT_LOADED},
    {"NVML_ERROR_TIMEOUT", NVML_ERROR_TIMEOUT},
    {"NVML_ERROR_IRQ_ISSUE", NVML_ERROR_IRQ_ISSUE},
    {"NVML_ERROR_LIBRARY_NOT_FOUND", NVML_ERROR_LIBRARY_NOT_FOUND},
    {"NVML_ERROR_FUNCTION_NOT_FOUND", NVML_ERROR_FUNCTION_NOT_FOUND},
    {"NVML_ERROR_CORRUPTED_INFOROM", NVML_ERROR_CORRUPTED_INFOROM},
    {"NVML_ERROR_GPU_IS_LOST", NVML_ERROR_GPU_IS_LOST},
    {"NVML_ERROR_RESET_REQUIRED", NVML_ERROR_RESET_REQUIRED},
    {"NVML_ERROR_OPERATING_SYSTEM", NVML_ERROR_OPERATING_SYSTEM},
    {"NVML_ERROR_LIB_RM_VERSION_MISMATCH", NVML_ERROR_LIB_RM_VERSION_MISMATCH},
    {"NVML_ERROR_IN_USE", NVML_ERROR_IN_USE},
    {"NVML_ERROR_MEMORY", NVML_ERROR_MEMORY},
    {"NVML_ERROR_NO_DATA", NVML_ERROR_NO_DATA},
    {"NVML_ERROR_UNKNOWN", NVML_ERROR_UNKNOWN},
};

const char *nvmlErrorString(nvmlReturn_t result) {
    static const char *texts[] = {
        "Success", "Uninitialized", "Invalid Argument", "Not Supported",
        "Insufficient Permissions", "Already Initialized", "Not Found",
        "Insufficient Size", "Insufficient External Power", "Driver Not Loaded",
        "Timeout", "Interrupt Request Issue", "NVML Shared Library Not Found",
        "Function Not Found", "Corrupted infoROM", "GPU is lost", "GPU requires restart",
        "The operating system has blocked the request.",
        "RM has detected an NVML/RM version mismatch.", "In use by another client",
        "Insufficient Memory", "No data"};
    if (result >= 0 && result < (int)(sizeof texts / sizeof texts[0])) return texts[result];
    return "Unknown Error";
}

/* ---- fixture parsing ------------------------------------------------------------- */

static int parse_error(int line, const char *what) {
    fprintf(stderr, "ds01 fake NVML: fixture line %d: %s\n", line, what);
    next.ok = 0;
    next.failure = NVML_ERROR_UNKNOWN;
    return -1;
}

/* Split one line into words; a value may be double-quoted ("NVIDIA A100 ..."). */
static int split(char *s, char **words, int max) {
    int n = 0;
    while (*s && n < max) {
        while (isspace((unsigned char)*s)) s++;
        if (!*s || *s == '#') break;
        words[n++] = s;
        int quoted = 0;
        char *out = s;
        for (; *s && (quoted || !isspace((unsigned char)*s)); s++) {
            if (*s == '"') quoted = !quoted;
            else *out++ = *s;
        }
        if (*s) s++;
        *out = '\0';
    }
    return n;
}

static const char *value(char **words, int n, const char *key) {
    size_t k = strlen(key);
    for (int i = 0; i < n; i++)
        if (strncmp(words[i], key, k) == 0 && words[i][k] == '=') return words[i] + k + 1;
    return NULL;
}

static int has_word(char **words, int n, const char *word) {
    for (int i = 0; i < n; i++)
        if (strcmp(words[i], word) == 0) return 1;
    return 0;
}

static int to_int(const char *s, long *out) {
    char *end;
    if (!s || !*s) return -1;
    *out = strtol(s, &end, 0);
    return *end ? -1 : 0;
}

/* "3" -> gpu 3, any handle of it; "3/2" -> MIG slot 2 of GPU 3; "3/parent" -> GPU 3 only. */
static int parse_place(const char *s, int *gpu, int *slot) {
    char buf[32];
    long g, m;
    snprintf(buf, sizeof buf, "%s", s);
    char *slash = strchr(buf, '/');
    *slot = ANY;
    if (slash) {
        *slash = '\0';
        if (strcmp(slash + 1, "parent") == 0) *slot = PARENT;
        else if (to_int(slash + 1, &m) || m < 0 || m >= MAX_MIG) return -1;
        else *slot = (int)m;
    }
    if (to_int(buf, &g) || g < 0 || g >= MAX_GPUS) return -1;
    *gpu = (int)g;
    return 0;
}

static int parse_code(const char *s) {
    long n;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(codes[i].name, s) == 0) return codes[i].code;
    if (to_int(s, &n) == 0 && n > 0) return (int)n;
    return -1;
}

static int parse_memory(const char *s, unsigned long long *out) {
    long mib;
    if (s && strcmp(s, "na") == 0) { *out = NOT_AVAILABLE; return 0; }
    if (to_int(s, &mib) || mib < 0) return -1;
    *out = (unsigned long long)mib * MIB;
    return 0;
}

static int parse_line(int ln, char *line) {
    char *w[24];
    int n = split(line, w, 24);
    long num;
    if (n == 0) return 0;
    if (strcmp(w[0], "driver") == 0 && n == 2) {
        snprintf(next.driver, sizeof next.driver, "%s", w[1]);
    } else if (strcmp(w[0], "nvml") == 0 && n == 2) {
        snprintf(next.nvml, sizeof next.nvml, "%s", w[1]);
    } else if (strcmp(w[0], "cuda") == 0 && n == 2 && to_int(w[1], &num) == 0) {
        next.cuda = (int)num;
    } else if (strcmp(w[0], "gpu") == 0 && n >= 2) {
        if (to_int(w[1], &num) || num != next.ngpus || num >= MAX_GPUS)
            return parse_error(ln, "gpu indexes must count up from 0 (at most 16 GPUs)");
        struct gpu *g = &next.gpus[next.ngpus++];
        const char *v;
        snprintf(g->uuid, sizeof g->uuid, "GPU-00000000-0000-4000-8000-%012ld", num);
        snprintf(g->name, sizeof g->name, "NVIDIA A100-SXM4-80GB");
        g->memory = 81920 * MIB;
        g->mig_mode = MIG_NONE;
        g->max_mig = 7;
        if ((v = value(w, n, "uuid"))) snprintf(g->uuid, sizeof g->uuid, "%s", v);
        if ((v = value(w, n, "name"))) snprintf(g->name, sizeof g->name, "%s", v);
        if ((v = value(w, n, "memory")) && (parse_memory(v, &g->memory) || g->memory == NOT_AVAILABLE))
            return parse_error(ln, "gpu memory= is MiB");
        if ((v = value(w, n, "max_mig")) && (to_int(v, &num) || num < 0 || num > MAX_MIG))
            return parse_error(ln, "max_mig= is 0 to 8");
        if (v) g->max_mig = (unsigned)num;
        if ((v = value(w, n, "mig"))) {
            if (strcmp(v, "on") == 0) g->mig_mode = MIG_ON;
            else if (strcmp(v, "off") == 0) g->mig_mode = MIG_OFF;
            else if (strcmp(v, "none") == 0) g->mig_mode = MIG_NONE;
            else return parse_error(ln, "mig= is on, off or none");
        }
        if ((v = value(w, n, "parent"))) {
            if (strcmp(v, "aggregate") == 0) g->parent_aggregate = 1;
            else if (strcmp(v, "denied") != 0) return parse_error(ln, "parent= is denied or aggregate");
        }
        g->lost = has_word(w, n, "lost");
    } else if (strcmp(w[0], "mig") == 0 && n >= 3) {
        long gi, slot;
        const char *v;
        if (to_int(w[1], &gi) || gi < 0 || gi >= next.ngpus)
            return parse_error(ln, "mig names a gpu line above it");
        struct gpu *g = &next.gpus[gi];
        if (to_int(w[2], &slot) || slot < 0 || slot >= (long)g->max_mig)
            return parse_error(ln, "mig slot is 0 to the GPU's max_mig - 1");
        if (g->mig_mode == MIG_NONE) return parse_error(ln, "mig on a GPU without mig=on/off");
        struct mig *m = &g->migs[slot];
        m->present = 1;
        m->gi = (unsigned)slot + 1;
        m->ci = 0;
        snprintf(m->uuid, sizeof m->uuid, "MIG-00000000-0000-4000-8000-%06ld%06ld", gi, slot);
        snprintf(m->profile, sizeof m->profile, "1g.10gb");
        m->memory = 9856 * MIB;
        if ((v = value(w, n, "gi"))) { if (to_int(v, &num)) return parse_error(ln, "gi= is a number"); m->gi = (unsigned)num; }
        if ((v = value(w, n, "ci"))) { if (to_int(v, &num)) return parse_error(ln, "ci= is a number"); m->ci = (unsigned)num; }
        if ((v = value(w, n, "uuid"))) snprintf(m->uuid, sizeof m->uuid, "%s", v);
        if ((v = value(w, n, "profile"))) snprintf(m->profile, sizeof m->profile, "%s", v);
        if ((v = value(w, n, "memory")) && (parse_memory(v, &m->memory) || m->memory == NOT_AVAILABLE))
            return parse_error(ln, "mig memory= is MiB");
    } else if (strcmp(w[0], "proc") == 0 && n >= 3) {
        struct proc p = {0};
        const char *v;
        if (next.nprocs >= MAX_PROCS) return parse_error(ln, "more than 4096 proc lines");
        if (parse_place(w[1], &p.gpu, &p.slot) || p.gpu >= next.ngpus || p.slot == PARENT)
            return parse_error(ln, "proc GPU or GPU/SLOT names a gpu line above it");
        if (p.slot != ANY && !next.gpus[p.gpu].migs[p.slot].present)
            return parse_error(ln, "proc GPU/SLOT names a mig line above it");
        if (p.slot == ANY) p.slot = PARENT;
        if (to_int(value(w, n, "pid"), &num) || num <= 0) return parse_error(ln, "proc needs pid=N");
        p.pid = (unsigned)num;
        p.memory = 0;
        if ((v = value(w, n, "memory")) && parse_memory(v, &p.memory))
            return parse_error(ln, "proc memory= is MiB or na");
        if ((v = value(w, n, "kind"))) {
            if (strcmp(v, "graphics") == 0) p.kind = KIND_GRAPHICS;
            else if (strcmp(v, "compute") != 0) return parse_error(ln, "kind= is compute or graphics");
        }
        next.procs[next.nprocs++] = p;
    } else if ((strcmp(w[0], "error") == 0 || strcmp(w[0], "hang") == 0) && n >= 2) {
        struct rule r = {.gpu = ANY, .slot = ANY, .code = -1, .times = -1};
        const char *v;
        int is_error = w[0][0] == 'e';
        if (next.nrules >= MAX_RULES) return parse_error(ln, "more than 64 error/hang lines");
        snprintf(r.symbol, sizeof r.symbol, "%s", w[1]);
        if ((v = value(w, n, "gpu")) && parse_place(v, &r.gpu, &r.slot))
            return parse_error(ln, "gpu= is GPU, GPU/SLOT or GPU/parent");
        if (is_error && (r.code = parse_code(w[n - 1])) <= 0)
            return parse_error(ln, "error SYMBOL [gpu=..] NVML_ERROR_NAME");
        next.rules[next.nrules++] = r;
    } else if (strcmp(w[0], "grow") == 0 && n >= 3) {
        struct rule r = {.slot = ANY, .times = -1};
        const char *v;
        if (next.ngrow >= MAX_RULES) return parse_error(ln, "more than 64 grow lines");
        if (parse_place(w[1], &r.gpu, &r.slot)) return parse_error(ln, "grow GPU[/SLOT] by=N");
        if (to_int(value(w, n, "by"), &num) || num <= 0) return parse_error(ln, "grow needs by=N");
        r.code = (int)num;
        if ((v = value(w, n, "times")) && to_int(v, &num) == 0) r.times = (int)num;
        next.grow[next.ngrow++] = r;
    } else {
        return parse_error(ln, "unknown line (driver, nvml, cuda, gpu, mig, proc, error, hang, grow)");
    }
    return 0;
}

static void load(const char *path) {
    FILE *f = fopen(path, "r");
    char line[1024];
    int ln = 0;
    memset(&next, 0, sizeof next);
    next.ok = 1;
    snprintf(next.driver, sizeof next.driver, "550.54.15");
    snprintf(next.nvml, sizeof next.nvml, "12.550.54.15");
    next.cuda = 12040;
    if (!f) {
        next.ok = 0;
        next.failure = NVML_ERROR_DRIVER_NOT_LOADED;
    } else {
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = '\0';
            if (parse_line(++ln, line)) break;
        }
        fclose(f);
    }
    memcpy(&cur, &next, sizeof cur);
}

/* Re-read the fixture if it changed since the last read. Called with the lock held. */
static void reload(void) {
    const char *path = getenv("DS01_FAKE_NVML_FIXTURE");
    struct stat st;
    if (!path || stat(path, &st) != 0) {
        /* No fixture is a machine without the driver. */
        if (seen_valid || cur.ok || cur.failure != NVML_ERROR_DRIVER_NOT_LOADED) {
            memset(&cur, 0, sizeof cur);
            cur.failure = NVML_ERROR_DRIVER_NOT_LOADED;
        }
        seen_valid = 0;
        return;
    }
    if (seen_valid && st.st_ino == seen.st_ino && st.st_size == seen.st_size &&
        st.st_mtim.tv_sec == seen.st_mtim.tv_sec && st.st_mtim.tv_nsec == seen.st_mtim.tv_nsec)
        return;
    seen = st;
    seen_valid = 1;
    load(path);
}

/* ---- the gate every device call passes ------------------------------------------ */

static int rule_matches(const struct rule *r, const char *symbol, int gpu, int slot) {
    if (symbol && strcmp(r->symbol, symbol) != 0) return 0;
    if (r->gpu == ANY) return 1;
    if (r->gpu != gpu) return 0;
    return r->slot == ANY || r->slot == slot;
}

/* Sleep while a hang rule names this call; the rule going away from the fixture ends it. */
static void hang_while_named(const char *symbol, int gpu, int slot) {
    for (;;) {
        int hung = 0;
        reload();
        for (int i = 0; i < cur.nrules; i++)
            if (cur.rules[i].code == -1 && rule_matches(&cur.rules[i], symbol, gpu, slot)) hung = 1;
        if (!hung) return;
        pthread_mutex_unlock(&lock);
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&lock);
    }
}

/* Injected hangs and errors, then the state of the GPU. `gpu` is ANY for system calls. */
static nvmlReturn_t gate(const char *symbol, int gpu, int slot) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    if (!cur.ok) return cur.failure;
    hang_while_named(symbol, gpu, slot);
    for (int i = 0; i < cur.nrules; i++)
        if (cur.rules[i].code > 0 && rule_matches(&cur.rules[i], symbol, gpu, slot))
            return cur.rules[i].code;
    if (gpu != ANY && (gpu >= cur.ngpus)) return NVML_ERROR_INVALID_ARGUMENT;
    if (gpu != ANY && cur.gpus[gpu].lost) return NVML_ERROR_GPU_IS_LOST;
    return NVML_SUCCESS;
}

static const struct handle *as_handle(nvmlDevice_t device) {
    const struct handle *h = (const struct handle *)device;
    if (h >= &parents[0] && h < &parents[MAX_GPUS]) return h;
    if (h >= &migs[0][0] && h < &migs[0][0] + MAX_GPUS * MAX_MIG) return h;
    return NULL;
}

/* Lock, look the handle up and pass the gate; on failure the lock is already dropped. */
#define ENTER(symbol, device, h)                                          \
    pthread_mutex_lock(&lock);                                            \
    const struct handle *h = as_handle(device);                           \
    if (!h) { pthread_mutex_unlock(&lock); return NVML_ERROR_INVALID_ARGUMENT; } \
    { nvmlReturn_t rc_ = gate(symbol, h->gpu, h->slot);                   \
      if (rc_) { pthread_mutex_unlock(&lock); return rc_; } }             \
    if (h->slot != PARENT && !cur.gpus[h->gpu].migs[h->slot].present) {   \
      pthread_mutex_unlock(&lock); return NVML_ERROR_INVALID_ARGUMENT; }

#define LEAVE(rc) do { pthread_mutex_unlock(&lock); return (rc); } while (0)

/* ---- system --------------------------------------------------------------------- */

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    pthread_mutex_lock(&lock);
    reload();
    if (!cur.ok) LEAVE(cur.failure);
    init_count++;
    nvmlReturn_t rc = gate("nvmlInitWithFlags", ANY, ANY);
    if (rc) init_count--;
    LEAVE(rc);
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&lock);
    if (!init_count) LEAVE(NVML_ERROR_UNINITIALIZED);
    init_count--;
    LEAVE(NVML_SUCCESS);
}

static nvmlReturn_t copy_text(const char *symbol, const char *text, char *out, unsigned length) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t rc = gate(symbol, ANY, ANY);
    if (rc) LEAVE(rc);
    if (!out) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (strlen(text) + 1 > length) LEAVE(NVML_ERROR_INSUFFICIENT_SIZE);
    strcpy(out, text);
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    return copy_text("nvmlSystemGetDriverVersion", cur.driver, version, length);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    return copy_text("nvmlSystemGetNVMLVersion", cur.nvml, version, length);
}

static nvmlReturn_t cuda_version(const char *symbol, int *out) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t rc = gate(symbol, ANY, ANY);
    if (rc) LEAVE(rc);
    if (!out) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *out = cur.cuda;
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { return cuda_version("nvmlSystemGetCudaDriverVersion", v); }
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { return cuda_version("nvmlSystemGetCudaDriverVersion_v2", v); }

static nvmlReturn_t device_count(const char *symbol, unsigned int *count) {
    pthread_mutex_lock(&lock);
    if (init_count) reload();
    nvmlReturn_t rc = gate(symbol, ANY, ANY);
    if (rc) LEAVE(rc);
    if (!count) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *count = (unsigned)cur.ngpus;
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) { return device_count("nvmlDeviceGetCount_v2", count); }
nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return device_count("nvmlDeviceGetCount", count); }

static nvmlReturn_t handle_by_index(const char *symbol, unsigned int index, nvmlDevice_t *device) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t rc = gate(symbol, (int)(index < MAX_GPUS ? index : MAX_GPUS), PARENT);
    /* A lost GPU still has a handle; every question asked of it answers GPU_IS_LOST. */
    if (rc && rc != NVML_ERROR_GPU_IS_LOST) LEAVE(rc);
    if (!device) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *device = (nvmlDevice_t)&parents[index];
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) { return handle_by_index("nvmlDeviceGetHandleByIndex_v2", i, d); }
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int i, nvmlDevice_t *d) { return handle_by_index("nvmlDeviceGetHandleByIndex", i, d); }

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t rc = gate("nvmlDeviceGetHandleByUUID", ANY, ANY);
    if (rc) LEAVE(rc);
    if (!uuid || !device) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    for (int g = 0; g < cur.ngpus; g++) {
        if (strcmp(cur.gpus[g].uuid, uuid) == 0) { *device = (nvmlDevice_t)&parents[g]; LEAVE(NVML_SUCCESS); }
        for (int s = 0; s < MAX_MIG; s++)
            if (cur.gpus[g].migs[s].present && strcmp(cur.gpus[g].migs[s].uuid, uuid) == 0) {
                *device = (nvmlDevice_t)&migs[g][s];
                LEAVE(NVML_SUCCESS);
            }
    }
    LEAVE(NVML_ERROR_NOT_FOUND);
}

/* ---- one device ----------------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    ENTER("nvmlDeviceGetIndex", device, h);
    if (!index) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *index = (unsigned)h->gpu;
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor) {
    ENTER("nvmlDeviceGetMinorNumber", device, h);
    if (!minor) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (h->slot != PARENT) LEAVE(NVML_ERROR_NOT_SUPPORTED);
    *minor = (unsigned)h->gpu;
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    char text[160];
    ENTER("nvmlDeviceGetName", device, h);
    const struct gpu *g = &cur.gpus[h->gpu];
    if (h->slot == PARENT) snprintf(text, sizeof text, "%s", g->name);
    else snprintf(text, sizeof text, "%s MIG %s", g->name, g->migs[h->slot].profile);
    if (!name) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (strlen(text) + 1 > length) LEAVE(NVML_ERROR_INSUFFICIENT_SIZE);
    strcpy(name, text);
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    ENTER("nvmlDeviceGetUUID", device, h);
    const struct gpu *g = &cur.gpus[h->gpu];
    const char *text = h->slot == PARENT ? g->uuid : g->migs[h->slot].uuid;
    if (!uuid) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (strlen(text) + 1 > length) LEAVE(NVML_ERROR_INSUFFICIENT_SIZE);
    strcpy(uuid, text);
    LEAVE(NVML_SUCCESS);
}

/* Memory in use on a handle: what its processes use (N/A ones count as nothing). */
static unsigned long long used_memory(const struct handle *h) {
    unsigned long long used = 0;
    for (int i = 0; i < cur.nprocs; i++) {
        const struct proc *p = &cur.procs[i];
        if (p->gpu == h->gpu && (h->slot == PARENT || p->slot == h->slot) && p->memory != NOT_AVAILABLE)
            used += p->memory;
    }
    return used;
}

static unsigned long long total_memory(const struct handle *h) {
    const struct gpu *g = &cur.gpus[h->gpu];
    return h->slot == PARENT ? g->memory : g->migs[h->slot].memory;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    ENTER("nvmlDeviceGetMemoryInfo", device, h);
    if (!memory) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    memory->total = total_memory(h);
    memory->used = used_memory(h);
    memory->free = memory->used > memory->total ? 0 : memory->total - memory->used;
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    ENTER("nvmlDeviceGetMemoryInfo_v2", device, h);
    if (!memory) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    memory->total = total_memory(h);
    memory->reserved = 0;
    memory->used = used_memory(h);
    memory->free = memory->used > memory->total ? 0 : memory->total - memory->used;
    LEAVE(NVML_SUCCESS);
}

/* nvitop's MIG rows need an answer here (it fails to print a MIG device without one). */
nvmlReturn_t nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t device, nvmlBAR1Memory_t *bar1) {
    ENTER("nvmlDeviceGetBAR1MemoryInfo", device, h);
    if (!bar1) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    bar1->bar1Total = 256 * MIB;
    bar1->bar1Used = 2 * MIB;
    bar1->bar1Free = bar1->bar1Total - bar1->bar1Used;
    LEAVE(NVML_SUCCESS);
}

/* ---- MIG ------------------------------------------------------------------------ */

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
    ENTER("nvmlDeviceGetMigMode", device, h);
    const struct gpu *g = &cur.gpus[h->gpu];
    if (h->slot != PARENT) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (g->mig_mode == MIG_NONE) LEAVE(NVML_ERROR_NOT_SUPPORTED);
    if (!current || !pending) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *current = *pending = (unsigned)g->mig_mode;
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
    ENTER("nvmlDeviceGetMaxMigDeviceCount", device, h);
    const struct gpu *g = &cur.gpus[h->gpu];
    if (h->slot != PARENT) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (g->mig_mode == MIG_NONE) LEAVE(NVML_ERROR_NOT_SUPPORTED);
    if (!count) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *count = g->max_mig;
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *mig) {
    ENTER("nvmlDeviceGetMigDeviceHandleByIndex", device, h);
    const struct gpu *g = &cur.gpus[h->gpu];
    if (h->slot != PARENT || !mig) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (g->mig_mode == MIG_NONE) LEAVE(NVML_ERROR_NOT_SUPPORTED);
    if (index >= g->max_mig) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (g->mig_mode != MIG_ON || !g->migs[index].present) LEAVE(NVML_ERROR_NOT_FOUND);
    *mig = (nvmlDevice_t)&migs[h->gpu][index];
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *is_mig) {
    ENTER("nvmlDeviceIsMigDeviceHandle", device, h);
    if (!is_mig) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *is_mig = h->slot != PARENT;
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t device, nvmlDevice_t *parent) {
    ENTER("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", device, h);
    if (h->slot == PARENT || !parent) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *parent = (nvmlDevice_t)&parents[h->gpu];
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id) {
    ENTER("nvmlDeviceGetGpuInstanceId", device, h);
    if (h->slot == PARENT) LEAVE(NVML_ERROR_NOT_SUPPORTED);
    if (!id) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *id = cur.gpus[h->gpu].migs[h->slot].gi;
    LEAVE(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id) {
    ENTER("nvmlDeviceGetComputeInstanceId", device, h);
    if (h->slot == PARENT) LEAVE(NVML_ERROR_NOT_SUPPORTED);
    if (!id) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *id = cur.gpus[h->gpu].migs[h->slot].ci;
    LEAVE(NVML_SUCCESS);
}

/* ---- process lists -------------------------------------------------------------- */

/* How many processes this sizing call leaves out ("the count grew between the calls"). */
static int undercount(const struct handle *h) {
    for (int i = 0; i < cur.ngrow; i++) {
        struct rule *r = &cur.grow[i];
        if (!rule_matches(r, NULL, h->gpu, h->slot) || r->times == 0) continue;
        if (r->times > 0) r->times--;
        return r->code;
    }
    return 0;
}

static nvmlReturn_t list_processes(const char *symbol, nvmlDevice_t device, unsigned int *count,
                                   void *infos, size_t entry_size, int kind) {
    pthread_mutex_lock(&lock);
    if (init_count) reload();
    pthread_mutex_unlock(&lock);
    ENTER(symbol, device, h);
    const struct gpu *g = &cur.gpus[h->gpu];
    if (!count) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    /* In MIG mode the GPU-wide list is privileged; with privileges it lists every
       MIG device's processes again, which a careful caller must not count twice. */
    if (h->slot == PARENT && g->mig_mode == MIG_ON && !g->parent_aggregate) LEAVE(NVML_ERROR_NO_PERMISSION);
    unsigned n = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (!infos) {
                int fewer = undercount(h);
                *count = n > (unsigned)fewer ? n - (unsigned)fewer : 0;
                LEAVE(*count ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS);
            }
            if (*count < n) { *count = n; LEAVE(NVML_ERROR_INSUFFICIENT_SIZE); }
            n = 0;
        }
        for (int i = 0; i < cur.nprocs; i++) {
            const struct proc *p = &cur.procs[i];
            if (p->gpu != h->gpu || p->kind != kind) continue;
            if (h->slot != PARENT && p->slot != h->slot) continue;
            if (h->slot == PARENT && (g->mig_mode == MIG_ON) != (p->slot != PARENT)) continue;
            if (pass == 1) {
                nvmlProcessInfo_t info = {p->pid, p->memory, NO_INSTANCE, NO_INSTANCE};
                if (p->slot != PARENT) {
                    info.gpuInstanceId = g->migs[p->slot].gi;
                    info.computeInstanceId = g->migs[p->slot].ci;
                }
                memcpy((char *)infos + n * entry_size, &info, entry_size);
            }
            n++;
        }
    }
    *count = n;
    LEAVE(NVML_SUCCESS);
}

#define LIST(name, entry, kind)                                                          \
    nvmlReturn_t name(nvmlDevice_t d, unsigned int *count, entry *infos) {               \
        return list_processes(#name, d, count, infos, sizeof(entry), kind);             \
    }

LIST(nvmlDeviceGetComputeRunningProcesses_v3, nvmlProcessInfo_t, KIND_COMPUTE)
LIST(nvmlDeviceGetComputeRunningProcesses_v2, nvmlProcessInfo_t, KIND_COMPUTE)
LIST(nvmlDeviceGetComputeRunningProcesses, nvmlProcessInfo_v1_t, KIND_COMPUTE)
LIST(nvmlDeviceGetGraphicsRunningProcesses_v3, nvmlProcessInfo_t, KIND_GRAPHICS)
LIST(nvmlDeviceGetGraphicsRunningProcesses_v2, nvmlProcessInfo_t, KIND_GRAPHICS)
LIST(nvmlDeviceGetGraphicsRunningProcesses, nvmlProcessInfo_v1_t, KIND_GRAPHICS)
