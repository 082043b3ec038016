"""A local llama.cpp server for a GGUF model: started, watched and stopped by ragent."""
