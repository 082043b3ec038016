package ragent.esanalysis;

import java.util.Map;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

/**
 * Registers {@code stemmer} and {@code asciifolding}, the token filters of the keyword index's
 * mapping that the Elasticsearch integ-test distribution lacks.
 *
 * <p>This is not Elasticsearch's analysis-common module. It exists because the tests run the
 * integ-test distribution (the one Maven Central publishes), which ships without
 * analysis-common, and the module is not published on its own. The filters wrap the same
 * Lucene classes as analysis-common does, so an index analyses text the same way here as on a
 * stock server, which has the module and must not get this plugin.
 */
public final class EnglishAnalysisPlugin extends Plugin implements AnalysisPlugin {

    /** Creates the plugin; Elasticsearch calls this when it loads the plugin. */
    public EnglishAnalysisPlugin() {}

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of(
            "stemmer",
            (indexSettings, environment, name, settings) -> new StemmerFilterFactory(name, settings),
            "asciifolding",
            (indexSettings, environment, name, settings) -> new AsciiFoldingFilterFactory(name, settings)
        );
    }
}
