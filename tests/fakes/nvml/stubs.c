/* Symbols pynvml, gpustat and nvitop look up that a fixture does not describe: each
 * exists, so no tool fails on a missing symbol, and answers NVML_ERROR_NOT_SUPPORTED,
 * as a board without the feature does. Found by running the tools against the fake
 * (tests/unit/test_fake_nvml.py keeps the list complete).
 */
#include "fake_nvml.h"

#define STUB(name) \
    nvmlReturn_t name(void) { return NVML_ERROR_NOT_SUPPORTED; }

STUB(nvmlDeviceGetComputeMode)
STUB(nvmlDeviceGetConfComputeMemSizeInfo)
STUB(nvmlDeviceGetDecoderUtilization)
STUB(nvmlDeviceGetDisplayActive)
STUB(nvmlDeviceGetDriverModel)
STUB(nvmlDeviceGetDriverModel_v2)
STUB(nvmlDeviceGetEncoderUtilization)
STUB(nvmlDeviceGetEnforcedPowerLimit)
STUB(nvmlDeviceGetFanSpeed)
STUB(nvmlDeviceGetPciInfo_v3)
STUB(nvmlDeviceGetPerformanceState)
STUB(nvmlDeviceGetPersistenceMode)
STUB(nvmlDeviceGetPowerManagementLimit)
STUB(nvmlDeviceGetPowerUsage)
STUB(nvmlDeviceGetProcessUtilization)
STUB(nvmlDeviceGetRunningProcessDetailList)
STUB(nvmlDeviceGetTemperature)
STUB(nvmlDeviceGetTemperatureV)
STUB(nvmlDeviceGetTotalEccErrors)
STUB(nvmlDeviceGetUtilizationRates)
