/*
 * A fake libnvidia-ml.so.1 for testing lightning_energy's GPU meter through the REAL nvidia-ml-py binding.
 *
 * It implements the NVML entry points the meter uses, with the C signatures of nvml.h, and behaves as the
 * test scripts it. Built by tests/nvml_fake/conftest.py with the system C compiler:
 *
 *     cc -shared -fPIC -Wl,-soname,libnvidia-ml.so.1 -o libnvidia-ml.so.1 fake_nvml.c -pthread
 *
 * Script: a text file, one directive per line ('#' starts a comment), loaded by fake_nvml_load(path) or, at
 * the first nvmlInit, from the file named by the environment variable FAKE_NVML_SCRIPT:
 *
 *     driver 550.54.15
 *     init_error DRIVER_NOT_LOADED                  # nvmlInit fails with this error
 *     gpu uuid=GPU-aaaa-... name=NVIDIA_H100 energy=1000000,+5000 power=100000 instant=250000
 *         limit=700000 memory=85899345920 pci=00000000:01:00.0 mig=0
 *     mig parent=0 uuid=MIG-1111-...                 # a MIG device of GPU 0 (turns MIG mode on)
 *
 * Underscores in name= become spaces. energy= (mJ), power= (mW, nvmlDeviceGetPowerUsage) and instant= (mW,
 * field NVML_FI_DEV_POWER_INSTANT) are per-call sequences: comma-separated numbers or error names
 * (NOT_SUPPORTED, NO_PERMISSION, UNKNOWN, GPU_IS_LOST, ...); after the last entry it repeats, unless the
 * last entry is +N: then each further call adds N to the last number. Defaults: energy and instant
 * NOT_SUPPORTED, power 100000. MIG devices report NOT_SUPPORTED for energy and power, like the real NVML.
 *
 * Control (for the test, through ctypes): fake_nvml_load, fake_nvml_set, fake_nvml_refcount,
 * fake_nvml_calls, fake_nvml_uninitialized_calls.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_UNKNOWN = 999,
};
#define NVML_FI_DEV_POWER_INSTANT 186
#define NVML_VALUE_TYPE_UNSIGNED_INT 1

#define MAX_DEVICES 16
#define MAX_STEPS 64
#define MAX_CHILDREN 8

typedef struct {
    int n;                       /* entries */
    long long value[MAX_STEPS];  /* number, when error[i] == 0 */
    int error[MAX_STEPS];        /* an NVML error code, or 0 */
    int has_step;                /* the script ended with +N */
    long long step;
    long calls;
} sequence_t;

typedef struct fake_device {
    char uuid[96];
    char name[96];
    char pci[32];
    unsigned long long memory;
    unsigned int limit_mw;
    sequence_t energy, power, instant;
    int is_mig, parent, mig_mode;
    int children[MAX_CHILDREN];
    int n_children;
} fake_device_t;
typedef fake_device_t *nvmlDevice_t;

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    signed int siVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static fake_device_t devices[MAX_DEVICES];
static int n_devices;  /* GPUs and MIG devices */
static int gpu_index[MAX_DEVICES]; /* NVML index -> devices[] */
static int n_gpus;
static char driver[80] = "550.54.15";
static int init_error;
static int refcount;
static int loaded;
static long uninitialized_calls;

#define N_COUNTED 8
static const char *counted_names[N_COUNTED] = {
    "nvmlInitWithFlags", "nvmlShutdown", "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetFieldValues", "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetCount_v2",
};
static long counted_calls[N_COUNTED];

static void count(const char *name) {
    for (int i = 0; i < N_COUNTED; i++)
        if (strcmp(counted_names[i], name) == 0) counted_calls[i]++;
}

static const struct { const char *name; int code; } error_names[] = {
    {"UNINITIALIZED", NVML_ERROR_UNINITIALIZED}, {"INVALID_ARGUMENT", NVML_ERROR_INVALID_ARGUMENT},
    {"NOT_SUPPORTED", NVML_ERROR_NOT_SUPPORTED}, {"NO_PERMISSION", NVML_ERROR_NO_PERMISSION},
    {"NOT_FOUND", NVML_ERROR_NOT_FOUND}, {"DRIVER_NOT_LOADED", NVML_ERROR_DRIVER_NOT_LOADED},
    {"GPU_IS_LOST", NVML_ERROR_GPU_IS_LOST}, {"UNKNOWN", NVML_ERROR_UNKNOWN},
};

static int error_code(const char *name) {
    for (size_t i = 0; i < sizeof error_names / sizeof error_names[0]; i++)
        if (strcmp(error_names[i].name, name) == 0) return error_names[i].code;
    return -1;
}

/* Parse "1,2,NOT_SUPPORTED,+5" into seq. Returns 0, or -1 on a syntax error. */
static int parse_sequence(sequence_t *seq, const char *text) {
    char buffer[2048];
    memset(seq, 0, sizeof *seq);
    snprintf(buffer, sizeof buffer, "%s", text);
    for (char *save = NULL, *token = strtok_r(buffer, ",", &save); token; token = strtok_r(NULL, ",", &save)) {
        if (token[0] == '+') {
            seq->has_step = 1;
            seq->step = atoll(token + 1);
            continue;
        }
        if (seq->has_step || seq->n >= MAX_STEPS) return -1;
        if (isdigit((unsigned char)token[0])) {
            seq->value[seq->n++] = atoll(token);
        } else {
            int code = error_code(token);
            if (code < 0) return -1;
            seq->error[seq->n++] = code;
        }
    }
    return seq->n > 0 ? 0 : -1;
}

/* The next value of a sequence: NVML_SUCCESS and *out, or the scripted error. */
static nvmlReturn_t next_value(sequence_t *seq, long long *out) {
    long call = seq->calls++;
    if (call < seq->n) {
        if (seq->error[call]) return seq->error[call];
        *out = seq->value[call];
        return NVML_SUCCESS;
    }
    int last = seq->n - 1;
    if (seq->error[last]) return seq->error[last];
    *out = seq->value[last] + (seq->has_step ? seq->step * (call - last) : 0);
    return NVML_SUCCESS;
}

static void reset_state(void) {
    memset(devices, 0, sizeof devices);
    n_devices = n_gpus = 0;
    snprintf(driver, sizeof driver, "%s", "550.54.15");
    init_error = 0;
    uninitialized_calls = 0;
    memset(counted_calls, 0, sizeof counted_calls);
}

static int add_device(char *args, int is_mig) {
    if (n_devices >= MAX_DEVICES) return -1;
    fake_device_t *d = &devices[n_devices];
    parse_sequence(&d->energy, "NOT_SUPPORTED");
    parse_sequence(&d->power, "100000");
    parse_sequence(&d->instant, "NOT_SUPPORTED");
    snprintf(d->name, sizeof d->name, "%s", "Fake GPU");
    snprintf(d->pci, sizeof d->pci, "00000000:%02X:00.0", n_gpus + 1);
    d->memory = 80ULL << 30;
    d->limit_mw = 400000;
    d->is_mig = is_mig;
    d->parent = -1;
    for (char *save = NULL, *kv = strtok_r(args, " \t", &save); kv; kv = strtok_r(NULL, " \t", &save)) {
        char *value = strchr(kv, '=');
        if (!value) return -1;
        *value++ = '\0';
        int bad = 0;
        if (strcmp(kv, "uuid") == 0) snprintf(d->uuid, sizeof d->uuid, "%s", value);
        else if (strcmp(kv, "name") == 0) {
            snprintf(d->name, sizeof d->name, "%s", value);
            for (char *c = d->name; *c; c++) if (*c == '_') *c = ' ';
        } else if (strcmp(kv, "pci") == 0) snprintf(d->pci, sizeof d->pci, "%s", value);
        else if (strcmp(kv, "memory") == 0) d->memory = strtoull(value, NULL, 10);
        else if (strcmp(kv, "limit") == 0) d->limit_mw = (unsigned int)strtoul(value, NULL, 10);
        else if (strcmp(kv, "energy") == 0) bad = parse_sequence(&d->energy, value);
        else if (strcmp(kv, "power") == 0) bad = parse_sequence(&d->power, value);
        else if (strcmp(kv, "instant") == 0) bad = parse_sequence(&d->instant, value);
        else if (strcmp(kv, "parent") == 0) d->parent = atoi(value);
        else bad = -1;
        if (bad) return -1;
    }
    if (is_mig) {
        if (d->parent < 0 || d->parent >= n_gpus) return -1;
        fake_device_t *parent = &devices[gpu_index[d->parent]];
        if (parent->n_children >= MAX_CHILDREN) return -1;
        parent->children[parent->n_children++] = n_devices;
        parent->mig_mode = 1;
        parse_sequence(&d->energy, "NOT_SUPPORTED");
        parse_sequence(&d->power, "NOT_SUPPORTED");
        memcpy(d->name, parent->name, sizeof d->name); /* d != parent */
    } else {
        gpu_index[n_gpus++] = n_devices;
    }
    n_devices++;
    return 0;
}

static int load_script(const char *path) {
    FILE *file = fopen(path, "r");
    if (!file) return -1;
    reset_state();
    char line[4096];
    int status = 0;
    while (status == 0 && fgets(line, sizeof line, file)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *word = strtok(line, " \t\r\n");
        if (!word) continue;
        char *rest = strtok(NULL, "\r\n");
        rest = rest ? rest : (char *)"";
        while (*rest == ' ' || *rest == '\t') rest++;
        if (strcmp(word, "gpu") == 0) status = add_device(rest, 0);
        else if (strcmp(word, "mig") == 0) status = add_device(rest, 1);
        else if (strcmp(word, "driver") == 0) snprintf(driver, sizeof driver, "%s", rest);
        else if (strcmp(word, "init_error") == 0) status = (init_error = error_code(rest)) < 0 ? -1 : 0;
        else status = -1;
    }
    fclose(file);
    loaded = 1;
    return status;
}

/* ---------------------------------------------------------------------------------------- control API */

int fake_nvml_load(const char *path) {
    pthread_mutex_lock(&lock);
    int status = load_script(path);
    pthread_mutex_unlock(&lock);
    return status;
}

/* Replace one sequence ("energy", "power", "instant") of the GPU with NVML index `index`. */
int fake_nvml_set(int index, const char *key, const char *spec) {
    int status = -1;
    pthread_mutex_lock(&lock);
    if (index >= 0 && index < n_gpus) {
        fake_device_t *d = &devices[gpu_index[index]];
        sequence_t *seq = strcmp(key, "energy") == 0 ? &d->energy
                        : strcmp(key, "power") == 0 ? &d->power
                        : strcmp(key, "instant") == 0 ? &d->instant : NULL;
        if (seq) status = parse_sequence(seq, spec);
    }
    pthread_mutex_unlock(&lock);
    return status;
}

int fake_nvml_refcount(void) { return refcount; }

long fake_nvml_calls(const char *name) {
    for (int i = 0; i < N_COUNTED; i++)
        if (strcmp(counted_names[i], name) == 0) return counted_calls[i];
    return -1;
}

long fake_nvml_uninitialized_calls(void) { return uninitialized_calls; }

/* ------------------------------------------------------------------------------------------ NVML API */

#define ENTER(name)                                  \
    pthread_mutex_lock(&lock);                       \
    count(name);                                     \
    if (refcount == 0) {                             \
        uninitialized_calls++;                       \
        pthread_mutex_unlock(&lock);                 \
        return NVML_ERROR_UNINITIALIZED;             \
    }
#define RETURN(code)                                 \
    do {                                             \
        nvmlReturn_t _code = (code);                 \
        pthread_mutex_unlock(&lock);                 \
        return _code;                                \
    } while (0)

static int valid(nvmlDevice_t device) {
    return device >= &devices[0] && device < &devices[n_devices];
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    pthread_mutex_lock(&lock);
    count("nvmlInitWithFlags");
    if (!loaded && getenv("FAKE_NVML_SCRIPT") && load_script(getenv("FAKE_NVML_SCRIPT")) != 0) {
        pthread_mutex_unlock(&lock);
        return NVML_ERROR_UNKNOWN;
    }
    if (init_error) RETURN(init_error);
    refcount++;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    ENTER("nvmlShutdown");
    refcount--;
    RETURN(NVML_SUCCESS);
}

const char *nvmlErrorString(nvmlReturn_t result) {
    for (size_t i = 0; i < sizeof error_names / sizeof error_names[0]; i++)
        if (error_names[i].code == result) return error_names[i].name;
    return result == NVML_SUCCESS ? "Success" : "Unknown Error";
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    ENTER("nvmlSystemGetDriverVersion");
    if (!version) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (strlen(driver) + 1 > length) RETURN(NVML_ERROR_INSUFFICIENT_SIZE);
    strcpy(version, driver);
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count_out) {
    ENTER("nvmlDeviceGetCount_v2");
    if (!count_out) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *count_out = (unsigned int)n_gpus;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    ENTER("nvmlDeviceGetHandleByIndex_v2");
    if (!device || index >= (unsigned int)n_gpus) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *device = &devices[gpu_index[index]];
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    ENTER("nvmlDeviceGetHandleByUUID");
    if (!uuid || !device) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    for (int i = 0; i < n_devices; i++) {
        if (strcmp(devices[i].uuid, uuid) == 0) {
            *device = &devices[i];
            RETURN(NVML_SUCCESS);
        }
    }
    RETURN(NVML_ERROR_NOT_FOUND);
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pci_bus_id, nvmlDevice_t *device) {
    ENTER("nvmlDeviceGetHandleByPciBusId_v2");
    if (!pci_bus_id || !device) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    for (int i = 0; i < n_gpus; i++) {
        if (strcasecmp(devices[gpu_index[i]].pci, pci_bus_id) == 0) {
            *device = &devices[gpu_index[i]];
            RETURN(NVML_SUCCESS);
        }
    }
    RETURN(NVML_ERROR_NOT_FOUND);
}

static nvmlReturn_t copy_string(const char *source, char *target, unsigned int length) {
    if (!target) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(source) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(target, source);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    ENTER("nvmlDeviceGetName");
    if (!valid(device)) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    RETURN(copy_string(device->name, name, length));
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    ENTER("nvmlDeviceGetUUID");
    if (!valid(device)) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    RETURN(copy_string(device->uuid, uuid, length));
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci) {
    ENTER("nvmlDeviceGetPciInfo_v3");
    if (!valid(device) || !pci) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busId, sizeof pci->busId, "%s", device->pci);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%s", device->pci + 4);
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    ENTER("nvmlDeviceGetMemoryInfo");
    if (!valid(device) || !memory) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    memory->total = device->memory;
    memory->free = device->memory;
    memory->used = 0;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device, unsigned int *limit) {
    ENTER("nvmlDeviceGetPowerManagementDefaultLimit");
    if (!valid(device) || !limit) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (device->is_mig) RETURN(NVML_ERROR_NOT_SUPPORTED);
    *limit = device->limit_mw;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy) {
    ENTER("nvmlDeviceGetTotalEnergyConsumption");
    if (!valid(device) || !energy) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    long long value = 0;
    nvmlReturn_t status = next_value(&device->energy, &value);
    if (status == NVML_SUCCESS) *energy = (unsigned long long)value;
    RETURN(status);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    ENTER("nvmlDeviceGetPowerUsage");
    if (!valid(device) || !power) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    long long value = 0;
    nvmlReturn_t status = next_value(&device->power, &value);
    if (status == NVML_SUCCESS) *power = (unsigned int)value;
    RETURN(status);
}

nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int count_in, nvmlFieldValue_t *values) {
    ENTER("nvmlDeviceGetFieldValues");
    if (!valid(device) || !values || count_in <= 0) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    for (int i = 0; i < count_in; i++) {
        nvmlFieldValue_t *field = &values[i];
        field->timestamp = 0;
        field->latencyUsec = 0;
        if (field->fieldId != NVML_FI_DEV_POWER_INSTANT || device->is_mig) {
            field->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
            continue;
        }
        long long value = 0;
        field->nvmlReturn = next_value(&device->instant, &value);
        field->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
        field->value.uiVal = (unsigned int)value;
    }
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *is_mig) {
    ENTER("nvmlDeviceIsMigDeviceHandle");
    if (!valid(device) || !is_mig) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *is_mig = (unsigned int)device->is_mig;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
    ENTER("nvmlDeviceGetMigMode");
    if (!valid(device) || !current || !pending) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (device->is_mig) RETURN(NVML_ERROR_NOT_SUPPORTED);
    *current = *pending = (unsigned int)device->mig_mode;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count_out) {
    ENTER("nvmlDeviceGetMaxMigDeviceCount");
    if (!valid(device) || !count_out) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *count_out = device->mig_mode ? 7 : 0;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *mig) {
    ENTER("nvmlDeviceGetMigDeviceHandleByIndex");
    if (!valid(device) || !mig) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (index >= (unsigned int)device->n_children) RETURN(NVML_ERROR_NOT_FOUND);
    *mig = &devices[device->children[index]];
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig, nvmlDevice_t *device) {
    ENTER("nvmlDeviceGetDeviceHandleFromMigDeviceHandle");
    if (!valid(mig) || !device || !mig->is_mig) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *device = &devices[gpu_index[mig->parent]];
    RETURN(NVML_SUCCESS);
}
