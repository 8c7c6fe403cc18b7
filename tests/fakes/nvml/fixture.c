/* The fake NVML's fixture file: parsed line by line into `struct state` (format in
 * docs/nvml.md), re-read when the file changes.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fake_state.h"

HIDDEN struct state cur;
static struct state next;
static struct stat seen;
static int seen_valid;

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
        g->minor = (unsigned)num;
        if ((v = value(w, n, "minor")) && (to_int(v, &num) || num < 0 || num > 255))
            return parse_error(ln, "minor= is 0 to 255");
        if (v) g->minor = (unsigned)num;
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
HIDDEN void reload(void) {
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

HIDDEN int rule_matches(const struct rule *r, const char *symbol, int gpu, int slot) {
    if (symbol && strcmp(r->symbol, symbol) != 0) return 0;
    if (r->gpu == ANY) return 1;
    if (r->gpu != gpu) return 0;
    return r->slot == ANY || r->slot == slot;
}
