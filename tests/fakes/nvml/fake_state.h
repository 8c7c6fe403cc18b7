/* The fake's state as read from the fixture, shared by fixture.c and fake_nvml.c.
 * Not part of NVML: every name here is hidden from the library's exported symbols.
 */
#ifndef DS01_FAKE_STATE_H
#define DS01_FAKE_STATE_H

#include "fake_nvml.h"

#define HIDDEN __attribute__((visibility("hidden")))

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
    unsigned minor;       /* N of /dev/nvidiaN: the index unless minor= says otherwise */
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

/* What the fixture says now; read and changed only with the library's lock held. */
HIDDEN extern struct state cur;

/* Re-read the fixture if its inode, size or mtime changed (caller holds the lock). */
HIDDEN void reload(void);

/* Whether an error/hang/grow rule names this call (symbol NULL: any symbol). */
HIDDEN int rule_matches(const struct rule *r, const char *symbol, int gpu, int slot);

#endif
