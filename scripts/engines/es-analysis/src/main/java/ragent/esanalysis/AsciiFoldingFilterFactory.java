package ragent.esanalysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.NormalizingTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;

/** The {@code asciifolding} token filter, with its {@code preserve_original} option. */
final class AsciiFoldingFilterFactory extends AbstractTokenFilterFactory
    implements NormalizingTokenFilterFactory {

    private final boolean preserveOriginal;

    AsciiFoldingFilterFactory(String name, Settings settings) {
        super(name);
        preserveOriginal = settings.getAsBoolean("preserve_original", false);
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return new ASCIIFoldingFilter(tokenStream, preserveOriginal);
    }

    /** A normalizer must yield one token per input token, so the original is never kept. */
    @Override
    public TokenStream normalize(TokenStream tokenStream) {
        return new ASCIIFoldingFilter(tokenStream, false);
    }

    /** Synonym rules are parsed with one token per term too (as analysis-common does). */
    @Override
    public TokenFilterFactory getSynonymFilter() {
        if (!preserveOriginal) {
            return this;
        }
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return AsciiFoldingFilterFactory.this.name();
            }

            @Override
            public TokenStream create(TokenStream tokenStream) {
                return new ASCIIFoldingFilter(tokenStream, false);
            }
        };
    }
}
