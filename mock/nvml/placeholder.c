/* Placeholder: the simulated NVML lands with the node-engine work. */
int nvdp_mock_nvml_placeholder(void);
int nvdp_mock_nvml_placeholder(void)
{
        return 0;
}
