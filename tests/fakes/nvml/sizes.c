/* Prints the sizes and values the fake shares with NVML, one per line. Compiled twice
 * by test_fake_nvml.py: against fake_nvml.h and against NVIDIA's nvml.h (-DUSE_NVML_H);
 * the two outputs must be equal.
 */
#include <stddef.h>
#include <stdio.h>
#ifdef USE_NVML_H
#include <nvml.h>
#else
#include "fake_nvml.h"
#endif

#define SIZE(type) printf("sizeof %s %zu\n", #type, sizeof(type))
#define OFFSET(type, field) printf("offsetof %s.%s %zu\n", #type, #field, offsetof(type, field))
#define VALUE(name) printf("value %s %d\n", #name, (int)(name))

int main(void) {
    SIZE(nvmlProcessInfo_t);
    SIZE(nvmlProcessInfo_v1_t);
    SIZE(nvmlProcessInfo_v2_t);
    OFFSET(nvmlProcessInfo_t, pid);
    OFFSET(nvmlProcessInfo_t, usedGpuMemory);
    OFFSET(nvmlProcessInfo_t, gpuInstanceId);
    OFFSET(nvmlProcessInfo_t, computeInstanceId);
    SIZE(nvmlMemory_t);
    SIZE(nvmlMemory_v2_t);
    OFFSET(nvmlMemory_v2_t, total);
    OFFSET(nvmlMemory_v2_t, used);
    SIZE(nvmlBAR1Memory_t);
    SIZE(nvmlDevice_t);
    SIZE(nvmlReturn_t);
    VALUE(NVML_SUCCESS);
    VALUE(NVML_ERROR_UNINITIALIZED);
    VALUE(NVML_ERROR_INVALID_ARGUMENT);
    VALUE(NVML_ERROR_NOT_SUPPORTED);
    VALUE(NVML_ERROR_NO_PERMISSION);
    VALUE(NVML_ERROR_NOT_FOUND);
    VALUE(NVML_ERROR_INSUFFICIENT_SIZE);
    VALUE(NVML_ERROR_DRIVER_NOT_LOADED);
    VALUE(NVML_ERROR_TIMEOUT);
    VALUE(NVML_ERROR_LIBRARY_NOT_FOUND);
    VALUE(NVML_ERROR_FUNCTION_NOT_FOUND);
    VALUE(NVML_ERROR_GPU_IS_LOST);
    VALUE(NVML_ERROR_LIB_RM_VERSION_MISMATCH);
    VALUE(NVML_ERROR_UNKNOWN);
    VALUE(NVML_DEVICE_MIG_ENABLE);
    VALUE(NVML_DEVICE_MIG_DISABLE);
    return 0;
}
