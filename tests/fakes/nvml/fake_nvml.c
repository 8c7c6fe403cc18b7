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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_state.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;
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

/* ---- the gate every device call passes ------------------------------------------ */

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
    *minor = cur.gpus[h->gpu].minor;
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
